"""The Typer app, its shared options and output helpers, and the entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .. import __version__, service
from ..errors import (
    EXIT_CANCELLED,
    EXIT_DOCUMENTS_FAILED,
    EXIT_JOB_FAILED,
    EXIT_PAUSED,
    ConfigError,
    OcrbatchError,
)
from ..progress import configure_logging

__all__ = [
    "FailUnderOpt",
    "app",
    "err",
    "finish",
    "main",
    "num",
    "out",
    "parse_opts",
    "pct",
    "print_summary",
    "state",
]

app = typer.Typer(
    name="ocrbatch",
    help="Resumable, supervised batch OCR for scanned images, TIFFs and PDFs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False)

state: dict[str, Any] = {"db": None, "progress": "auto"}

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the job store "
        "[env OCRBATCH_DB; default: a SQLite file in "
        "~/.local/share/ocrbatch]",
        envvar="OCRBATCH_DB",
    ),
]
JobArg = Annotated[str, typer.Argument(help="Job id or name.")]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Distributed mode: the Ray cluster, auto or ray://host:port "
        "[env RAY_ADDRESS; default: a local Ray instance].",
        envvar="RAY_ADDRESS",
    ),
]
ShipPagesOpt = Annotated[
    str,
    typer.Option(
        help="Distributed mode: send page bytes to workers: auto (to nodes that do not "
        "see the input files), always or never."
    ),
]
CpusOpt = Annotated[
    float, typer.Option(help="Distributed mode: CPUs one worker reserves.", min=0.01)
]
GpusOpt = Annotated[float, typer.Option(help="Distributed mode: GPUs one worker reserves.", min=0)]
GroundTruthOpt = Annotated[
    str | None,
    typer.Option(help="Folder of <name>.gt.txt files mirroring the inputs' tree."),
]
CasefoldOpt = Annotated[bool, typer.Option(help="Score accuracy case-insensitively.")]
IgnoreCharsOpt = Annotated[
    str, typer.Option(help="Characters dropped from both sides before scoring, e.g. '~'.")
]
FailUnderOpt = Annotated[
    float,
    typer.Option(
        metavar="RATE",
        help="Exit 8 when the share of documents that completed is below RATE (0..1) "
        "[default: 1, any failed document].",
        min=0,
        max=1,
    ),
]
MinConfidenceOpt = Annotated[
    float | None,
    typer.Option(help="Flag pages under this confidence (0..1) for review.", min=0, max=1),
]


@app.callback()
def _main(
    log_json: Annotated[bool, typer.Option("--log-json", help="Logs as JSON lines.")] = False,
    progress: Annotated[
        str, typer.Option(help="auto (bar on a TTY, else log lines), bar, log or none.")
    ] = "auto",
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()
    if progress not in ("auto", "bar", "log", "none"):
        raise typer.BadParameter("must be auto, bar, log or none", param_hint="--progress")
    configure_logging(json_logs=log_json)
    state["progress"] = "log" if (log_json and progress == "auto") else progress


def parse_opts(pairs: list[str] | None) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--engine-opt takes KEY=VALUE, got {pair!r}")
        try:
            opts[key] = json.loads(value)
        except json.JSONDecodeError:
            opts[key] = value
    return opts


def print_summary(summary: dict[str, Any]) -> None:
    d, p = summary["documents"], summary["pages"]
    t = Table(
        title=f"job {summary['job']} ({summary['name']}): {summary['status']}", show_header=False
    )
    t.add_row(
        "documents",
        f"{d['completed']} completed, {d['failed']} failed, "
        f"{d['reused']} reused, {d['total']} total",
    )
    t.add_row("pages", f"{p['completed']} completed, {p['failed']} failed, {p['total']} total")
    t.add_row("success rate", pct(summary["success_rate"]))
    t.add_row(
        "time",
        f"{summary['total_time_s']:.1f} s, {num(summary['time_per_document_s'])} s/document",
    )
    t.add_row(
        "throughput",
        f"{num(summary['throughput_pages_per_s'])} pages/s with {summary['workers']} workers",
    )
    t.add_row(
        "CPU / memory",
        f"{num(summary['cpu_usage_avg_percent'])}% avg, "
        f"{num(summary['memory_usage_avg_mb'])} MB avg",
    )
    t.add_row(
        "cost",
        f"{summary['cost']['total']:.4f} at {summary['cost']['price_per_cpu_hour']}/CPU-hour",
    )
    acc = summary.get("accuracy")
    if acc:
        t.add_row(
            "accuracy",
            f"CER {acc['cer']:.4f}, WER {acc['wer']:.4f}, bag-of-words {acc['bow']:.4f} "
            f"on {acc['pages']} pages with ground truth (`ocrbatch eval {summary['job']}`)",
        )
    if summary.get("output"):
        t.add_row("results", str(summary["output"]))
    if summary["pages"]["failed"] or summary["documents"]["failed"]:
        t.add_row("errors", str(Path(summary["output"] or ".") / "errors.jsonl"))
    if summary.get("export_errors"):
        t.add_row(
            "export errors",
            f"{summary['export_errors']} document files not written (errors.jsonl, kind export)",
        )
    review = summary.get("review")
    if review:
        t.add_row(
            "review",
            f"{review['pages']} pages under confidence {review['min_confidence']} "
            "(summary.json: review)",
        )
    out.print(t)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def finish(summary: dict[str, Any], db: str | None, fail_under: float = 1.0) -> None:
    """Print the summary and exit with the job's outcome: 0 when the share of documents
    that completed is at least ``fail_under`` (every one, by default), else 8; 9 when
    the job failed, 10 when it was cancelled, 130 when it paused."""
    print_summary(summary)
    status = summary["status"]
    if status == "paused":
        job = summary["job"]
        err.print(
            f"paused: continue with `{service.cli_hint('resume', job, db)}`; the results so "
            f"far are in {summary.get('output')} (summary.json says partial)"
        )
        raise typer.Exit(EXIT_PAUSED)
    if status == "cancelled":
        raise typer.Exit(EXIT_CANCELLED)
    if status == "failed":
        raise typer.Exit(EXIT_JOB_FAILED)
    rate = summary.get("success_rate")
    if rate is not None and rate < fail_under:
        raise typer.Exit(EXIT_DOCUMENTS_FAILED)


def main() -> None:
    """Console entry point: OcrbatchError -> one line on stderr and its exit code."""
    try:
        app()
    except OcrbatchError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
