"""A standing job: OCR what lands in a folder or bucket prefix (`ocrbatch watch`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .. import standing
from ..errors import EXIT_CANCELLED
from ..progress import make_reporter
from .app import app, err, output_options, print_summary, state
from .batch import NameOpt
from .options import DbOpt, OutOpt, config_options

__all__: list[str] = []


@app.command()
@config_options("run")
@output_options
def watch(
    source: Annotated[
        str,
        typer.Argument(metavar="SOURCE", help="A folder, or a bucket prefix (s3://bucket/inbox/)."),
    ],
    out_dir: OutOpt = None,
    settle: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="A file is taken once its size and modification time (an object's "
            "ETag) have not changed for this long.",
            rich_help_panel="Input and pages",
        ),
    ] = 10.0,
    done_prefix: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="Move each input whose results are written to this folder (or bucket "
            "prefix), under its path below SOURCE.",
            rich_help_panel="Input and pages",
        ),
    ] = None,
    name: NameOpt = None,
    db: DbOpt = None,
    *,
    options: dict[str, Any],
) -> None:
    """OCR every file that lands in SOURCE into --out, until stopped (Ctrl-C).

    - ocrbatch watch /srv/inbox --out /srv/ocr --settle 10 --format txt,pdf
    - ocrbatch watch s3://scans/inbox/ --out s3://ocr/inbox/

    Each new or changed file is taken once it has settled; the same command again
    continues the job: nothing is read twice, nothing that arrived meanwhile is missed.
    `ocrbatch status` shows the job.
    """
    summary = standing.watch(
        source,
        out_dir,
        settle=settle,
        done_prefix=done_prefix,
        db=db,
        name=name,
        reporter=make_reporter(state["progress"]),
        handle_signals=True,
        **options,
    )
    print_summary(summary)
    if summary["status"] == "cancelled":
        raise typer.Exit(EXIT_CANCELLED)
    err.print(f"stopped watching {source}; the same command continues job {summary['job']}")
