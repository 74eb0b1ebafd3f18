"""Routes of jobs: create (the options of `ocrbatch submit`), list, one job's figures,
pause / resume / cancel / retry-failed, live progress as server-sent events, webhook
deliveries. Each calls service.py or the store's named methods."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, StreamingResponse

from .. import service
from ..config import cli_fields
from ..errors import OcrbatchError, one_line
from ..intake import ENGINE_SHORTCUTS
from ..store import TokenInfo
from .auth import read_scope, write_scope
from .context import ENDED, ServiceContext, context
from .errors import ApiError, status_of
from .schemas import DeliveryOut, JobIn, JobList, JobOut

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["jobs"])

Ctx = Annotated[ServiceContext, Depends(context)]
Reader = Annotated[TokenInfo, Depends(read_scope)]
Writer = Annotated[TokenInfo, Depends(write_scope)]
JobRef = Annotated[str, "Job id or name"]

# The options a job takes through the API: those of `ocrbatch submit`.
JOB_OPTIONS = frozenset(cli_fields("submit")) | set(ENGINE_SHORTCUTS) | {"engine_options"}
# Options naming a path on the server: confined like the inputs.
_PATH_OPTIONS = ("ground_truth", "cache_dir", "tessdata")


def job_options(ctx: ServiceContext, options: dict[str, Any]) -> dict[str, Any]:
    """The body's job options, their paths confined (values are checked by
    intake.make_config when the job is submitted)."""
    unknown = sorted(set(options) - JOB_OPTIONS)
    if unknown:
        raise ApiError(
            422, f"options: unknown option {unknown[0]!r} (known: those of `ocrbatch submit`)"
        )
    opts = dict(options)
    engine_opts = opts.get("engine_options")
    if engine_opts is not None and not isinstance(engine_opts, dict):
        raise ApiError(422, "options.engine_options: must be an object")
    for key in _PATH_OPTIONS:
        for where in (opts, engine_opts or {}):
            if where.get(key) is not None:
                where[key] = ctx.confine.path(str(where[key]), f"--{key.replace('_', '-')}")
    return opts


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


@router.post("/jobs", status_code=201, response_model=JobOut, summary="Create a job")
def create_job(body: JobIn, ctx: Ctx, token: Writer) -> JSONResponse:
    """Submit a job to the service's queue (or ``queue``); its documents are discovered
    before this returns. Paths must lie below the service's allowed roots."""
    inputs = ctx.confine.paths(body.inputs, "input")
    if body.out:
        out = ctx.confine.path(body.out, "out")
    else:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        out = str(ctx.settings.results / f"{stamp}-{secrets.token_hex(4)}")
    options = job_options(ctx, body.options)
    job_id = service.submit(
        inputs,
        out,
        db=ctx.settings.db,
        name=body.name,
        description=body.description,
        force=body.force,
        priority=body.priority,
        **options,
    )
    # The callback first, then the queue: a worker cannot end the job before its
    # events have somewhere to go.
    if body.callback_url:
        ctx.store.set_callback(job_id, body.callback_url, token.id)
    ctx.store.enqueue(job_id, body.queue or ctx.settings.queue)
    return _json(ctx.status(job_id, fresh=True), 201)


@router.get("/jobs", response_model=JobList, summary="List jobs")
def list_jobs(
    ctx: Ctx,
    _: Reader,
    status: Annotated[list[str] | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """The newest jobs first, optionally of some statuses only; paged."""
    rows = ctx.store.list_jobs(limit + 1, statuses=status, offset=offset)
    jobs = [ctx.describe(j) for j in rows[:limit]]
    return _json({"jobs": jobs, "next_offset": offset + limit if len(rows) > limit else None})


@router.get("/jobs/{job}", response_model=JobOut, summary="One job's figures")
def get_job(job: JobRef, ctx: Ctx, _: Reader) -> JSONResponse:
    """Counts, pages/s, ETA, accuracy (when ground truth exists), review pages."""
    return _json(ctx.status(job))


def _control(ctx: ServiceContext, job: str, action: str) -> JSONResponse:
    db = ctx.settings.db
    if action == "pause":
        service.pause(job, db=db)
    elif action == "cancel":
        service.cancel(job, db=db)
    else:
        service.release(job, db=db, failed=action == "retry-failed")
    ctx.forget()
    return _json(ctx.status(job, fresh=True))


@router.post("/jobs/{job}/pause", response_model=JobOut, summary="Pause a job")
def pause_job(job: JobRef, ctx: Ctx, _: Writer) -> JSONResponse:
    """Its workers stop within about a second; finished pages stay done."""
    return _control(ctx, job, "pause")


@router.post("/jobs/{job}/resume", response_model=JobOut, summary="Resume a job")
def resume_job(job: JobRef, ctx: Ctx, _: Writer) -> JSONResponse:
    """Back to its queue; finished pages are not redone."""
    return _control(ctx, job, "resume")


@router.post("/jobs/{job}/cancel", response_model=JobOut, summary="Cancel a job")
def cancel_job(job: JobRef, ctx: Ctx, _: Writer) -> JSONResponse:
    return _control(ctx, job, "cancel")


@router.post("/jobs/{job}/retry-failed", response_model=JobOut, summary="Retry failed pages")
def retry_failed(job: JobRef, ctx: Ctx, _: Writer) -> JSONResponse:
    """Failed pages (and documents) get a fresh set of retries; the job goes back to its queue."""
    return _control(ctx, job, "retry-failed")


@router.get("/jobs/{job}/webhooks", response_model=list[DeliveryOut], summary="Webhook deliveries")
def deliveries(job: JobRef, ctx: Ctx, _: Reader) -> JSONResponse:
    """Every delivery of the job's callback, newest first, with its last attempt."""
    info = ctx.job(job)
    rows = ctx.store.deliveries(info.id)
    keep = DeliveryOut.model_fields
    return _json(
        [
            {
                k: v.isoformat() if isinstance(v, dt.datetime) else v
                for k, v in r.items()
                if k in keep
            }
            for r in rows
        ]
    )


@router.get(
    "/jobs/{job}/events",
    summary="Live progress (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(job: JobRef, ctx: Ctx, _: Reader) -> StreamingResponse:
    """``event: progress`` with the job's figures whenever they change (read from the
    store, where its coordinators write them once a second); ``event: end`` when the
    job has ended; a comment every 15 s keeps proxies from closing the stream."""
    first = await anyio.to_thread.run_sync(ctx.status, job)
    return StreamingResponse(
        _stream(ctx, job, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(ctx: ServiceContext, job: str, first: dict[str, Any]) -> AsyncIterator[str]:
    last: dict[str, Any] | None = None
    d = first
    quiet = 0.0
    while not ctx.stopping.is_set():
        if d != last:
            yield f"event: progress\ndata: {json.dumps(d)}\n\n"
            last, quiet = d, 0.0
        if d["status"] in ENDED:
            yield f"event: end\ndata: {json.dumps(d)}\n\n"
            return
        await asyncio.sleep(1.0)
        quiet += 1.0
        if quiet >= 15:
            yield ": keep-alive\n\n"
            quiet = 0.0
        try:
            d = await anyio.to_thread.run_sync(ctx.status, job)
        except OcrbatchError as exc:
            payload = json.dumps({"error": one_line(exc.message), "status": status_of(exc)})
            yield f"event: error\ndata: {payload}\n\n"
            return
