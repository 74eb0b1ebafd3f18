"""Routes of a job's results: its documents (paged), one document as text, JSON with
boxes, hOCR, ALTO or a searchable PDF, a page's image, results.jsonl streamed, errors,
the review list of low-confidence pages and the throughput over time."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from ..errors import JobStateError
from ..exporters import document_record
from ..exporters.layout_xml import alto_document, hocr_document
from ..exporters.pdf import searchable_pdf
from ..exporters.records import error_records
from ..store import JobInfo, TokenInfo
from .auth import read_scope
from .context import ServiceContext, context
from .errors import ApiError
from .schemas import DocumentPage

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["results"])

Ctx = Annotated[ServiceContext, Depends(context)]
Reader = Annotated[TokenInfo, Depends(read_scope)]
Limit = Annotated[int, Query(ge=1, le=500)]
After = Annotated[
    int, Query(ge=0, le=2**62, description="Keyset: the last id of the previous page.")
]
DocStatus = Literal["pending", "completed", "failed", "cancelled"]
_PREVIEW_SIDE = 1400  # px, the longer side of a page image in the review list


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.datetime) else v


@router.get("/jobs/{job}/documents", response_model=DocumentPage, summary="Documents, paged")
def documents(
    job: str,
    ctx: Ctx,
    _: Reader,
    status: DocStatus | None = None,
    after: After = 0,
    limit: Limit = 50,
) -> JSONResponse:
    """The job's documents in discovery order, ``limit`` at a time after id ``after``."""
    info = ctx.job(job)
    rows = ctx.store.document_page(info.id, after=after, limit=limit + 1, status=status)
    docs = [
        {
            "id": r["id"],
            "path": r["path"],
            "rel_path": r["rel_path"],
            "status": r["status"],
            "pages": r["page_count"],
            "error": r["error_message"],
            "reused": r["reused_from"] is not None,
            "processing_time": r["processing_time"],
            "completed_at": _iso(r["completed_at"]),
        }
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return JSONResponse({"documents": docs, "next_after": docs[-1]["id"] if more else None})


def _document(ctx: ServiceContext, job: str, doc: int) -> tuple[JobInfo, dict[str, Any]]:
    info = ctx.job(job)
    raw = ctx.store.document_with_pages(info.id, doc)
    if raw is None:
        raise ApiError(404, f"job {info.id} has no document {doc}")
    return info, raw


def _completed(info: JobInfo, raw: dict[str, Any], what: str) -> None:
    if raw["status"] != "completed":
        raise JobStateError(
            f"document {raw['id']} of job {info.id} is {raw['status']}: its {what} comes "
            "when it is completed"
        )


@router.get("/jobs/{job}/documents/{doc}", summary="One document's result")
def document(job: str, doc: int, ctx: Ctx, _: Reader) -> JSONResponse:
    """The document's record as in results.jsonl (text, confidence, per-page results)."""
    raw = _document(ctx, job, doc)[1]
    return JSONResponse(document_record(raw))


@router.get("/jobs/{job}/documents/{doc}/text", response_class=PlainTextResponse, summary="Text")
def document_text(job: str, doc: int, ctx: Ctx, _: Reader) -> PlainTextResponse:
    """The document's text, pages separated by form feeds."""
    raw = _document(ctx, job, doc)[1]
    return PlainTextResponse(document_record(raw)["text"])


@router.get("/jobs/{job}/documents/{doc}/json", summary="JSON with word boxes")
def document_json(job: str, doc: int, ctx: Ctx, _: Reader) -> JSONResponse:
    """The record with each page's blocks, lines and words and their boxes."""
    raw = _document(ctx, job, doc)[1]
    return JSONResponse(document_record(raw, layout=True))


@router.get(
    "/jobs/{job}/documents/{doc}/hocr",
    summary="hOCR",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
def document_hocr(job: str, doc: int, ctx: Ctx, _: Reader) -> Response:
    info, raw = _document(ctx, job, doc)
    _completed(info, raw, "hOCR")
    return Response(hocr_document(raw), media_type="text/html; charset=utf-8")


@router.get(
    "/jobs/{job}/documents/{doc}/alto",
    summary="ALTO XML",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
def document_alto(job: str, doc: int, ctx: Ctx, _: Reader) -> Response:
    info, raw = _document(ctx, job, doc)
    _completed(info, raw, "ALTO")
    return Response(alto_document(raw), media_type="application/xml")


@router.get(
    "/jobs/{job}/documents/{doc}/pdf",
    summary="Searchable PDF",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def document_pdf(job: str, doc: int, ctx: Ctx, _: Reader) -> Response:
    """Built from the stored result and the input file (a PDF input keeps its pages)."""
    info, raw = _document(ctx, job, doc)
    _completed(info, raw, "searchable PDF")
    cfg = info.ocr_config or {}
    with tempfile.TemporaryDirectory(prefix="ocrbatch-pdf-") as tmp:
        dest = Path(tmp) / "doc.pdf"
        searchable_pdf(
            raw,
            dest,
            password=cfg.get("password"),
            max_pixels=int(cfg.get("max_pixels") or 250_000_000),
        )
        with open(dest, "rb") as f:
            data = f.read()
    name = os.path.basename(str(raw["rel_path"])) + ".pdf"
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}"},
    )


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


@router.get(
    "/jobs/{job}/documents/{doc}/pages/{page}/image",
    summary="A page's image (PNG, scaled down)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def page_image(
    job: str, doc: int, page: Annotated[int, "1-based"], ctx: Ctx, _: Reader
) -> Response:
    """Page ``page`` (1-based) of the document as the review list shows it."""
    info, raw = _document(ctx, job, doc)
    if not 1 <= page <= max(1, len(raw["pages"])):
        raise ApiError(404, f"document {doc} has no page {page}")
    cfg = info.ocr_config or {}
    max_pixels = int(cfg.get("max_pixels") or 250_000_000)
    path = str(raw["path"])
    if path.lower().endswith(".pdf"):
        from ..tools.pdf import render_page

        image, _plan = render_page(
            path, page - 1, dpi=100.0, max_pixels=max_pixels, password=cfg.get("password")
        )
    else:
        from ..tools.images import load_image

        image = load_image(path, page - 1, max_pixels=max_pixels)
    image.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE))
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return Response(buf.getvalue(), media_type="image/png", headers={"Cache-Control": "max-age=60"})


@router.get(
    "/jobs/{job}/results.jsonl",
    summary="results.jsonl, streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def results_jsonl(job: str, ctx: Ctx, _: Reader) -> StreamingResponse:
    """One line per document, streamed from the store (a chunk of documents at a time)."""
    info = ctx.job(job)

    def lines() -> Iterator[bytes]:
        for raw in ctx.store.iter_documents(info.id):
            yield (json.dumps(document_record(raw), ensure_ascii=False) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/jobs/{job}/errors", summary="Failed pages and documents")
def errors(
    job: str, ctx: Ctx, _: Reader, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Limit = 100,
) -> JSONResponse:  # fmt: skip
    """As errors.jsonl has them (kind, one-line reason, attempts), paged; and the
    failures counted by reason."""
    info = ctx.job(job)
    rows = []
    for i, rec in enumerate(error_records(ctx.store.iter_failed_pages(info.id))):
        if i >= offset + limit + 1:
            break
        if i >= offset:
            rows.append(rec)
    more = len(rows) > limit
    by_reason = [
        {"kind": r["error_kind"], "error": r["error_message"], "pages": r["pages"]}
        for r in ctx.store.failures_by_reason(info.id)
    ]
    return JSONResponse(
        {
            "errors": rows[:limit],
            "next_offset": offset + limit if more else None,
            "by_reason": by_reason,
        }
    )


@router.get("/jobs/{job}/review", summary="Pages under the confidence threshold")
def review(
    job: str,
    ctx: Ctx,
    _: Reader,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    after: After = 0,
    limit: Limit = 20,
) -> JSONResponse:
    """Completed pages whose confidence is under ``min_confidence`` (default: the
    job's --min-confidence), with their text; ``image`` is the page's picture."""
    info = ctx.job(job)
    threshold = min_confidence
    if threshold is None:
        threshold = (info.ocr_config or {}).get("min_confidence")
    if threshold is None:
        return JSONResponse({"min_confidence": None, "pages": [], "next_after": None})
    rows = ctx.store.low_confidence_pages(info.id, float(threshold), after=after, limit=limit + 1)
    pages = [
        {
            "task": r["id"],
            "document": r["document_id"],
            "path": r["path"],
            "rel_path": r["rel_path"],
            "page": r["page_index"] + 1,
            "confidence": r["confidence"],
            "text": r["result_text"],
            "image": f"/api/v1/jobs/{info.id}/documents/{r['document_id']}/pages/"
            f"{r['page_index'] + 1}/image",
        }
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return JSONResponse(
        {
            "min_confidence": threshold,
            "pages": pages,
            "next_after": pages[-1]["task"] if more else None,
        }
    )


@router.get("/jobs/{job}/throughput", summary="Pages/s over the job's life")
def throughput(
    job: str, ctx: Ctx, _: Reader, buckets: Annotated[int, Query(ge=1, le=500)] = 60
) -> JSONResponse:
    info = ctx.job(job)
    series = ctx.store.throughput_series(info.id, buckets)
    return JSONResponse({"series": [{"at": at, "pages_per_s": v} for at, v in series]})
