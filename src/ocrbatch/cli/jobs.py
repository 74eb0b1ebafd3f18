"""Commands on existing jobs: resume, retry, status, list, cancel, pause, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .. import service
from ..progress import make_reporter
from .app import (
    DbOpt,
    FailUnderOpt,
    JobArg,
    app,
    err,
    finish,
    num,
    out,
    state,
)

__all__: list[str] = []

JobPasswordOpt = Annotated[
    str | None,
    typer.Option(
        help="User password of encrypted PDFs, for a job that has ended (the store "
        "forgets it then) [env OCRBATCH_PDF_PASSWORD].",
        envvar="OCRBATCH_PDF_PASSWORD",
    ),
]


@app.command()
def resume(
    job: JobArg,
    db: DbOpt = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Override the worker count.")] = None,
    here: Annotated[
        bool, typer.Option(help="Run a queued job in this process instead of its queue.")
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
    finish(
        service.resume(
            job,
            db=db,
            reporter=make_reporter(state["progress"]),
            handle_signals=True,
            workers=workers,
            password=password,
        ),
        db,
        fail_under,
    )


@app.command("retry-failed")
def retry_failed(
    job: JobArg,
    db: DbOpt = None,
    password: JobPasswordOpt = None,
    fail_under: FailUnderOpt = 1.0,
) -> None:
    """Run the failed pages of a job again, with fresh retries."""
    finish(
        service.retry_failed(
            job,
            db=db,
            reporter=make_reporter(state["progress"]),
            handle_signals=True,
            password=password,
        ),
        db,
        fail_under,
    )


@app.command()
def status(
    job: Annotated[str | None, typer.Argument(help="Job id or name [default: newest].")] = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Progress of a job, read from the store (works while it runs elsewhere)."""
    d = service.job_status(job, db=db)
    if as_json:
        out.print_json(json.dumps(d))
        return
    t = Table(title=f"job {d['job']} ({d['name']})", show_header=False)
    t.add_row("status", d["status"])
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
    t.add_row(
        "ETA", "-" if d["eta_s"] is None else f"{d['eta_s']:.0f} s ({d['estimated_completion']})"
    )
    if d["owner"]:
        t.add_row("running in", d["owner"])
    t.add_row("output", str(d["output_path"]))
    out.print(t)


@app.command()
def jobs(db: DbOpt = None, limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """The newest jobs in the store."""
    t = Table("id", "name", "status", "pages", "failed", "%", "created")
    for d in service.list_jobs(db=db, limit=limit):
        t.add_row(
            str(d["job"]),
            d["name"],
            d["status"],
            f"{d['pages_done']}/{d['pages_total']}",
            str(d["pages_failed"]),
            f"{d['percent']:.0f}",
            d["created_at"][:19],
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
    out.print(f"job {job} paused")


@app.command()
def export(
    job: JobArg,
    fmt: Annotated[
        str, typer.Option("--format", help="Comma list of jsonl, csv, json, txt, hocr, alto, pdf.")
    ] = "jsonl",
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder [default: the job's].")
    ] = None,
    db: DbOpt = None,
    password: JobPasswordOpt = None,
) -> None:
    """Rebuild result files from the store.

    --password opens encrypted input PDFs for --format pdf (needed once the job has
    ended: the store forgets the job's password then).
    """
    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    summary = service.export(job, db=db, formats=formats, out=out_dir, password=password)
    out.print(f"exported job {summary['job']} ({', '.join(formats)})")
    if summary.get("export_errors"):
        err.print(
            f"{summary['export_errors']} document files not written: see errors.jsonl (kind export)"
        )
