"""Commands that start work: run a batch, submit it to a queue, work a queue."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .. import service
from ..progress import make_reporter
from .app import app, finish, out, output_options, state
from .options import DbOpt, FailUnderOpt, OutOpt, config_options

__all__: list[str] = []

InputsArg = Annotated[
    list[str],
    typer.Argument(metavar="INPUTS", help="Files, folders, globs, or @list.txt files."),
]
NameOpt = Annotated[
    str | None, typer.Option(metavar="TEXT", help="Job name.", rich_help_panel="Output")
]
DescriptionOpt = Annotated[
    str | None,
    typer.Option(metavar="TEXT", help="Job description.", rich_help_panel="Output"),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        metavar="",
        help="OCR again documents already done by an earlier job (same content, same "
        "engine options); their results are reused otherwise.",
        rich_help_panel="Input and pages",
    ),
]


@app.command()
@config_options("run")
@output_options
def run(
    inputs: InputsArg,
    out_dir: OutOpt = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    force: ForceOpt = False,
    fail_under: FailUnderOpt = 1.0,
    db: DbOpt = None,
    *,
    options: dict[str, Any],
) -> None:
    """OCR a batch of documents into --out: results.jsonl, summary.json, errors.jsonl,
    and the --format files (text, CSV, JSON, hOCR, ALTO, searchable PDF).

    - ocrbatch run scans/ -o results/
    - ocrbatch run a.pdf b.tif -j 4 --format txt,pdf
    - ocrbatch run @list.txt -l deu --pages 1-3 --fail-under 0.95

    Ctrl-C pauses the job; `ocrbatch resume JOB` continues it.
    """
    summary = service.run(
        inputs,
        out_dir,
        db=db,
        name=name,
        description=description,
        force=force,
        reporter=make_reporter(state["progress"]),
        handle_signals=True,
        **options,
    )
    finish(summary, db, fail_under)


@app.command()
@config_options("submit")
@output_options
def submit(
    inputs: InputsArg,
    out_dir: OutOpt = None,
    priority: Annotated[
        int, typer.Option(metavar="N", help="Higher runs first.", rich_help_panel="Queue")
    ] = 0,
    queue: Annotated[
        str,
        typer.Option(
            metavar="NAME", help="The queue workers take it from.", rich_help_panel="Queue"
        ),
    ] = "default",
    name: NameOpt = None,
    description: DescriptionOpt = None,
    force: ForceOpt = False,
    db: DbOpt = None,
    *,
    options: dict[str, Any],
) -> None:
    """Add a job to a queue without running it; `ocrbatch worker` processes run it.

    The job keeps every option given here; the worker that runs it decides only where
    (its mode, Ray address and worker slots).
    """
    job = service.submit(
        inputs,
        out_dir,
        db=db,
        name=name,
        description=description,
        force=force,
        priority=priority,
        queue=queue,
        **options,
    )
    out.print(f"job {job} submitted to queue {queue!r} (priority {priority})")


@app.command()
@config_options("worker")
@output_options
def worker(
    queue: Annotated[
        str, typer.Option(metavar="NAME", help="The queue to take jobs from.")
    ] = "default",
    exit_when_idle: Annotated[
        bool, typer.Option(metavar="", help="Stop when the queue has no pending or running job.")
    ] = False,
    db: DbOpt = None,
    *,
    options: dict[str, Any],
) -> None:
    """Process queued jobs: priority first, then age; fair share among equals.

    Ctrl-C or SIGTERM stops it; its pages in flight go back to the queue.
    """
    done = service.work(queue, db=db, exit_when_idle=exit_when_idle, handle_signals=True, **options)
    out.print(f"worker stopped; jobs finished here: {', '.join(map(str, done)) or 'none'}")
