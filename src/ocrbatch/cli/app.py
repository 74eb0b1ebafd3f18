"""The Typer app: global and output options, the summary table, exit codes, and the
entry point."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..errors import (
    EXIT_CANCELLED,
    EXIT_DOCUMENTS_FAILED,
    EXIT_JOB_FAILED,
    EXIT_PAUSED,
    OcrbatchError,
)
from ..logs import configure_logging
from ..outputs import cli_hint

__all__ = [
    "EXIT_CODES",
    "app",
    "err",
    "finish",
    "main",
    "num",
    "out",
    "output_options",
    "pct",
    "print_summary",
    "state",
]

# Every exit code, as `--help` and the README list them.
EXIT_CODES = (
    (0, "done: every document completed (or as many as --fail-under asks)"),
    (1, "an unexpected error (a bug: please report it with its traceback)"),
    (2, "a bad command line, option, input or environment variable"),
    (3, "the output folder cannot be written (the job stays in the store)"),
    (4, "the job store cannot be opened or written"),
    (5, "no such job, or no store where one was looked for"),
    (6, "the job's state does not allow it (running elsewhere, already done...)"),
    (7, "worker processes could not start"),
    (EXIT_DOCUMENTS_FAILED, "done, but some documents failed (errors.jsonl)"),
    (EXIT_JOB_FAILED, "done, and every document failed"),
    (EXIT_CANCELLED, "the job was cancelled"),
    (EXIT_PAUSED, "paused (Ctrl-C, `ocrbatch pause`) or interrupted: `resume` continues"),
)


def _plain_help_types() -> None:
    """Help shows the metavars we give (N, PATH, URL): Typer (0.29) adds its Python type
    names where none is given, `<bool>` beside a flag and `<list[str]>` beside the
    inputs; a reader needs neither (tested at 80 columns)."""
    from typer.core import TyperArgument, TyperOption

    option_type = TyperOption.display_type_rich

    def display_type(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else option_type(self, ctx)

    TyperOption.display_type_rich = display_type  # type: ignore[method-assign]
    TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]


_plain_help_types()
_EPILOG = "Exit codes:\n\n" + "\n".join(f"- {c}: {what}" for c, what in EXIT_CODES)

app = typer.Typer(
    name="ocrbatch",
    help="Resumable, supervised batch OCR for scanned images, TIFFs and PDFs.\n\n"
    "- ocrbatch run scans/ --out results/  (OCR a folder; `run --help` for every option)\n"
    "- ocrbatch status, ocrbatch jobs  (see the jobs)\n"
    "- ocrbatch resume JOB  (continue one)",
    epilog=_EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Markdown, not Rich markup: "[default: ...]" in a help text must stay as it is.
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
# No markup (a path or a job name may hold "[...]") and no hard wrapping of messages: a
# command they print must paste as one line. Tables still fit the terminal.
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
out = Console(highlight=False, markup=False, soft_wrap=True)

state: dict[str, Any] = {"progress": "auto", "json_logs": False, "level": "info"}

F = TypeVar("F", bound=Callable[..., Any])

_OUTPUT = "Output of the command"
ProgressOpt = Annotated[
    str | None,
    typer.Option(
        metavar="KIND",
        help="auto (a bar on a terminal, else log lines), bar, log or none.",
        rich_help_panel=_OUTPUT,
    ),
]
LogJsonOpt = Annotated[
    bool | None,
    typer.Option("--log-json", metavar="", help="Logs as JSON lines.", rich_help_panel=_OUTPUT),
]
QuietOpt = Annotated[
    bool | None,
    typer.Option(
        "--quiet",
        "-q",
        metavar="",
        help="No progress, warnings and errors only.",
        rich_help_panel=_OUTPUT,
    ),
]
VerboseOpt = Annotated[
    bool | None,
    typer.Option("--verbose", "-v", metavar="", help="Debug logs too.", rich_help_panel=_OUTPUT),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"ocrbatch {__version__}")
        raise typer.Exit()


def _configure(
    progress: str | None, log_json: bool | None, quiet: bool | None, verbose: bool | None
) -> None:
    if progress is not None:
        if progress not in ("auto", "bar", "log", "none"):
            raise typer.BadParameter("must be auto, bar, log or none", param_hint="--progress")
        state["progress"] = progress
    if log_json:
        state["json_logs"] = True
        if state["progress"] == "auto":
            state["progress"] = "log"
    if quiet:
        state["progress"], state["level"] = "none", "warning"
    if verbose:
        state["level"] = "debug"
    configure_logging(json_logs=state["json_logs"], level=state["level"])


@app.callback()
def _main(
    progress: ProgressOpt = None,
    log_json: LogJsonOpt = None,
    quiet: QuietOpt = None,
    verbose: VerboseOpt = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", metavar="", help="Print the version.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    _configure(progress, log_json, quiet, verbose)


def output_options(fn: F) -> F:
    """The output options of the app (--progress, --log-json, -q, -v), accepted after
    the command's name too (``ocrbatch run --progress log ...``)."""
    extra = {
        "progress": ProgressOpt,
        "log_json": LogJsonOpt,
        "quiet": QuietOpt,
        "verbose": VerboseOpt,
    }
    sig = inspect.signature(fn, eval_str=True)
    params = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
        for n, a in extra.items()
    ]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        _configure(*(kwargs.pop(n) for n in extra))
        return fn(**kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *params])  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def print_summary(summary: dict[str, Any]) -> None:
    d, p = summary["documents"], summary["pages"]
    t = Table(
        title=f"job {summary['job']} ({summary['name']}): {summary['status']}", show_header=False
    )
    t.add_column()
    t.add_column(overflow="fold")  # a long path wraps, never cut
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
            f"on {acc['pages']} pages with ground truth",
        )
    review = summary.get("review")
    if review:
        t.add_row(
            "review",
            f"{review['pages']} pages under confidence {review['min_confidence']} "
            "(summary.json: review)",
        )
    if summary.get("output"):
        partial = " (partial: the job has pages left)" if summary.get("partial") else ""
        t.add_row("results", f"{summary['output']}{partial}")
    if summary["pages"]["failed"] or summary["documents"]["failed"]:
        t.add_row("errors", f"{(summary['output'] or '.').rstrip('/')}/errors.jsonl")
    out.print(t)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def finish(summary: dict[str, Any], db: str | None, fail_under: float = 1.0) -> None:
    """Print the summary, the commands that follow from it, and exit with the job's
    outcome (see EXIT_CODES)."""
    print_summary(summary)
    job, status = summary["job"], summary["status"]
    if summary.get("accuracy"):
        err.print(f"accuracy per folder: `{cli_hint('eval', job, db)}`")
    if status == "paused":
        err.print(
            f"paused: continue with `{cli_hint('resume', job, db)}`; the results so far "
            f"are in {summary.get('output')} (summary.json says partial)"
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
    """The CLI: OcrbatchError -> one line on stderr and its exit code. (The console
    script enters through :mod:`ocrbatch.console`, which calls this.)"""
    try:
        app()
    except OcrbatchError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_PAUSED)
