"""Commands on existing jobs: resume, retry, status, list, cancel, pause, export."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from .. import service
from ..outputs import cli_hint
from ..progress import make_reporter
from .app import app, err, finish, num, out, output_options, state
from .options import DbOpt, FailUnderOpt, JobArg, JobPasswordOpt

__all__: list[str] = []

JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="JSON output (for scripts).")]


@app.command()
@output_options
def resume(
    job: JobArg,
    db: DbOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "--jobs",
            "-j",
            metavar="N",
            min=1,
            help="Worker processes [default: the job's, or from cores and memory].",
        ),
    ] = None,
    here: Annotated[
        bool,
        typer.Option(metavar="", help="Run a queued job in this process instead of its queue."),
    ] = False,
    password: JobPasswordOpt = None,
    fail_under: FailUnderOpt = 1.0,
) -> None:
    """Continue a paused or interrupted job; finished pages are not redone.

    A queued job goes back to its queue (its workers continue it within a second).
    """
    if not here and service.job_queue(job, db=db):
        q = service.release(job, db=db)
        out.print(f"job {job} back in queue {q!r}")
        return
    summary = service.resume(
        job,
        db=db,
        reporter=make_reporter(state["progress"]),
        handle_signals=True,
        workers=workers,
        password=password,
    )
    finish(summary, db, fail_under)


@app.command("retry-failed")
@output_options
def retry_failed(
    job: JobArg,
    db: DbOpt = None,
    password: JobPasswordOpt = None,
    fail_under: FailUnderOpt = 1.0,
) -> None:
    """Run the failed pages (and documents) of a job again, with fresh retries."""
    summary = service.retry_failed(
        job,
        db=db,
        reporter=make_reporter(state["progress"]),
        handle_signals=True,
        password=password,
    )
    finish(summary, db, fail_under)


def _when(iso: str | None, eta_s: float | None) -> str:
    """An ETA a person reads: how long, and the local time it comes to."""
    if eta_s is None:
        return "-"
    at = dt.datetime.fromisoformat(iso).astimezone() if iso else None
    left = (
        f"{int(eta_s // 3600)} h {int(eta_s % 3600 // 60)} min"
        if eta_s >= 3600
        else (f"{int(eta_s // 60)} min {int(eta_s % 60)} s" if eta_s >= 60 else f"{eta_s:.0f} s")
    )
    return f"{left} (at {at:%H:%M:%S} local)" if at else left


@app.command()
def status(
    job: Annotated[
        str | None, typer.Argument(metavar="[JOB]", help="Job id or name [default: newest].")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Progress of a job, read from the store (works while it runs elsewhere)."""
    d = service.job_status(job, db=db)
    if as_json:
        out.print_json(json.dumps(d))
        return
    t = Table(title=f"job {d['job']} ({d['name']})", show_header=False)
    t.add_column()
    t.add_column(overflow="fold")  # a long path wraps, never cut
    t.add_row("status", d["status"])
    if d.get("watch"):
        w = d["watch"]
        t.add_row("watching", f"{w['source']} (settle {w['settle']:g} s)")
    t.add_row(
        "pages",
        f"{d['pages_done']}/{d['pages_total']} ({d['percent']}%), {d['pages_failed']} failed",
    )
    t.add_row(
        "documents",
        f"{d['documents_done']}/{d['documents_total']}, "
        f"{d['documents_failed']} failed, {d['documents_reused']} reused",
    )
    t.add_row("throughput", f"{num(d['pages_per_s'])} pages/s")
    t.add_row("ETA", _when(d["estimated_completion"], d["eta_s"]))
    if d["owner"]:
        t.add_row("running in", d["owner"])
    if d["error"]:
        t.add_row("error", d["error"])
    t.add_row("output", f"{d['output_path']}" + (f" ({d['outputs']})" if d["outputs"] else ""))
    out.print(t)


@app.command()
def jobs(
    db: DbOpt = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, help="How many.")] = 20,
    status_: Annotated[
        list[str] | None,
        typer.Option("--status", metavar="STATUS", help="Only jobs of this status (repeat it)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest jobs in the store."""
    rows = service.list_jobs(db=db, limit=limit, status=status_)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    t = Table("id", "name", "status", "pages", "failed", "%", "created")
    for d in rows:
        created = dt.datetime.fromisoformat(d["created_at"]).astimezone()
        t.add_row(
            str(d["job"]),
            d["name"],
            d["status"],
            f"{d['pages_done']}/{d['pages_total']}",
            str(d["pages_failed"]),
            f"{d['percent']:.0f}",
            f"{created:%Y-%m-%d %H:%M}",
        )
    out.print(t)


@app.command()
def cancel(job: JobArg, db: DbOpt = None) -> None:
    """Cancel a job (a running coordinator stops within a second)."""
    service.cancel(job, db=db)
    out.print(f"job {job} cancelled")


@app.command()
def pause(job: JobArg, db: DbOpt = None) -> None:
    """Pause a running job from another terminal; `resume` continues it."""
    service.pause(job, db=db)
    out.print(f"job {job} paused (its results so far: `{cli_hint('export', job, db)}`)")


@app.command()
def export(
    job: JobArg,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="LIST",
            help="Comma list of jsonl, csv, json, txt, hocr, alto, pdf [default: the job's].",
        ),
    ] = "",
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            metavar="PATH",
            help="Output folder or bucket prefix [default: the job's].",
        ),
    ] = None,
    db: DbOpt = None,
    password: JobPasswordOpt = None,
) -> None:
    """Rebuild result files from the store (a job not finished yet: partial ones).

    --password opens encrypted input PDFs for --format pdf (needed once the job has
    ended: the store forgets the job's password then).
    """
    summary: dict[str, Any] = service.export(
        job, db=db, format=fmt or None, out=out_dir, password=password
    )
    where = out_dir or summary.get("output")
    partial = " (partial: the job has pages left)" if summary.get("partial") else ""
    out.print(f"exported job {summary['job']} to {where}{partial}")
    if summary.get("export_errors"):
        err.print(
            f"{summary['export_errors']} document files not written: see errors.jsonl (kind export)"
        )
