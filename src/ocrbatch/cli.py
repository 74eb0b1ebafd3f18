"""The ``ocrbatch`` command line (Typer). Errors print one line and exit non-zero."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from . import __version__, service
from .errors import ConfigError, OcrbatchError
from .progress import configure_logging, make_reporter

__all__ = ["app", "main"]

app = typer.Typer(
    name="ocrbatch",
    help="Resumable, supervised batch OCR for scanned images, TIFFs and PDFs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False)

_state: dict[str, Any] = {"db": None, "progress": "auto"}

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
    _state["progress"] = "log" if (log_json and progress == "auto") else progress


def _parse_opts(pairs: list[str] | None) -> dict[str, Any]:
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


def _print_summary(summary: dict[str, Any]) -> None:
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
    t.add_row("success rate", _pct(summary["success_rate"]))
    t.add_row(
        "time",
        f"{summary['total_time_s']:.1f} s, {_num(summary['time_per_document_s'])} s/document",
    )
    t.add_row(
        "throughput",
        f"{_num(summary['throughput_pages_per_s'])} pages/s with {summary['workers']} workers",
    )
    t.add_row(
        "CPU / memory",
        f"{_num(summary['cpu_usage_avg_percent'])}% avg, "
        f"{_num(summary['memory_usage_avg_mb'])} MB avg",
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
    review = summary.get("review")
    if review:
        t.add_row(
            "review",
            f"{review['pages']} pages under confidence {review['min_confidence']} "
            "(summary.json: review)",
        )
    out.print(t)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _finish(summary: dict[str, Any]) -> None:
    _print_summary(summary)
    if summary["status"] == "paused":
        err.print(f"paused: continue with `ocrbatch resume {summary['job']}`")
        raise typer.Exit(130)
    if summary["status"] == "cancelled":
        raise typer.Exit(1)


@app.command()
def run(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders, globs, or @list.txt.")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [default: from cores and memory].", min=1)
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds per page before its worker is killed.", min=0.001)
    ] = 120.0,
    max_retries: Annotated[int, typer.Option(help="Retries of a failed page.", min=0)] = 3,
    engine: Annotated[str, typer.Option(help="OCR engine (see `ocrbatch engines`).")] = "tesseract",
    lang: Annotated[str | None, typer.Option(help="Tesseract languages, e.g. eng+deu.")] = None,
    psm: Annotated[int | None, typer.Option(help="Tesseract page segmentation mode.")] = None,
    model: Annotated[str | None, typer.Option(help="Tesseract model: fast or standard.")] = None,
    tessdata: Annotated[str | None, typer.Option(help="Folder with *.traineddata.")] = None,
    engine_opt: Annotated[list[str] | None, typer.Option(help="Engine option KEY=VALUE.")] = None,
    mode: Annotated[
        str, typer.Option(help="sequential, parallel (local pool) or distributed (Ray).")
    ] = "parallel",
    ray_address: RayAddressOpt = None,
    ship_pages: ShipPagesOpt = "auto",
    cpus_per_worker: CpusOpt = 1.0,
    gpus_per_worker: GpusOpt = 0.0,
    fmt: Annotated[
        str, typer.Option("--format", help="Comma list of jsonl, csv, json, txt, hocr, alto, pdf.")
    ] = "jsonl",
    name: Annotated[str | None, typer.Option(help="Job name.")] = None,
    description: Annotated[str | None, typer.Option(help="Job description.")] = None,
    force: Annotated[
        bool, typer.Option(help="OCR again documents already done (same content and config).")
    ] = False,
    recycle_after: Annotated[
        int, typer.Option(help="Replace a worker after N pages (0: never).", min=0)
    ] = 500,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse images with more pixels.", min=1)
    ] = 250_000_000,
    price_per_cpu_hour: Annotated[
        float, typer.Option(help="For the cost in the summary.", min=0)
    ] = 0.05,
    dpi: Annotated[
        float, typer.Option(help="Resolution PDF pages are rendered at.", min=30, max=1200)
    ] = 300.0,
    pages: Annotated[
        str | None, typer.Option(help="Pages of each document, e.g. 1-5,10,20- [default: all].")
    ] = None,
    force_ocr: Annotated[
        bool,
        typer.Option(
            "--force-ocr/--skip-text",
            help="OCR PDF pages that already have text, or take their text layer (default).",
        ),
    ] = False,
    password: Annotated[
        str | None,
        typer.Option(
            help="User password of encrypted PDFs [env OCRBATCH_PDF_PASSWORD].",
            envvar="OCRBATCH_PDF_PASSWORD",
        ),
    ] = None,
    preprocess: Annotated[
        str,
        typer.Option(
            help="auto (check each page, fix what it needs), off, or a comma list of steps: "
            "grayscale, crop, orientation, deskew, denoise, upscale, binarize "
            "(auto,-step leaves a step out of auto).",
        ),
    ] = "auto",
    cache_dir: Annotated[
        str | None,
        typer.Option(
            help="Cache of preprocessed pages [env OCRBATCH_CACHE; default: "
            "~/.cache/ocrbatch/pages]."
        ),
    ] = None,
    cache_max_mb: Annotated[
        int, typer.Option(help="Size cap of the cache in MB (0: no cache).", min=0)
    ] = 2048,
    ground_truth: GroundTruthOpt = None,
    casefold: CasefoldOpt = False,
    ignore_chars: IgnoreCharsOpt = "",
    min_confidence: MinConfidenceOpt = None,
    db: DbOpt = None,
) -> None:
    """OCR a batch of documents into --out (results.jsonl, summary.json, errors.jsonl).

    Where ground truth exists (<name>.gt.txt beside an input, or under --ground-truth
    DIR mirroring the inputs), CER, WER and bag-of-words error are recorded per page,
    per document and for the job (summary.json "accuracy"; `ocrbatch eval JOB`).
    """
    opts = _parse_opts(engine_opt)
    for k, v in (("lang", lang), ("psm", psm), ("model", model), ("tessdata", tessdata)):
        if v is not None:
            if engine != "tesseract":
                raise ConfigError(f"--{k} applies to the tesseract engine only")
            opts[k] = v
    config = {
        "engine": engine,
        "engine_options": opts,
        "mode": mode,
        "workers": workers,
        "timeout": timeout,
        "max_retries": max_retries,
        "formats": fmt,
        "recycle_after": recycle_after,
        "max_image_pixels": max_pixels,
        "price_per_cpu_hour": price_per_cpu_hour,
        "dpi": dpi,
        "pages": pages,
        "force_ocr": force_ocr,
        "password": password,
        "preprocess": preprocess,
        "cache_dir": cache_dir,
        "cache_max_mb": cache_max_mb,
        "ray_address": ray_address,
        "ship_pages": ship_pages,
        "cpus_per_worker": cpus_per_worker,
        "gpus_per_worker": gpus_per_worker,
        "ground_truth": ground_truth,
        "casefold": casefold,
        "ignore_chars": ignore_chars,
        "min_confidence": min_confidence,
    }
    summary = service.run(
        inputs,
        out_dir,
        db=db,
        name=name,
        description=description,
        config=config,
        force=force,
        reporter=make_reporter(_state["progress"]),
        handle_signals=True,
    )
    _finish(summary)


@app.command()
def submit(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders, globs, or @list.txt.")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first.")] = 0,
    queue: Annotated[str, typer.Option(help="The queue workers take it from.")] = "default",
    max_workers: Annotated[
        int | None, typer.Option(help="At most this many pages of the job at once.", min=1)
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds per page before its worker is killed.", min=0.001)
    ] = 120.0,
    max_retries: Annotated[int, typer.Option(help="Retries of a failed page.", min=0)] = 3,
    engine: Annotated[str, typer.Option(help="OCR engine (see `ocrbatch engines`).")] = "tesseract",
    engine_opt: Annotated[list[str] | None, typer.Option(help="Engine option KEY=VALUE.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Comma list of jsonl, csv, json, txt.")
    ] = "jsonl",
    name: Annotated[str | None, typer.Option(help="Job name.")] = None,
    description: Annotated[str | None, typer.Option(help="Job description.")] = None,
    force: Annotated[
        bool, typer.Option(help="OCR again documents already done (same content and config).")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Add a job to a queue without running it; `ocrbatch worker` processes run it."""
    config = {
        "engine": engine,
        "engine_options": _parse_opts(engine_opt),
        "workers": max_workers,
        "timeout": timeout,
        "max_retries": max_retries,
        "formats": fmt,
    }
    job = service.submit(
        inputs,
        out_dir,
        db=db,
        name=name,
        description=description,
        config=config,
        force=force,
        priority=priority,
        queue=queue,
    )
    out.print(f"job {job} submitted to queue {queue!r} (priority {priority})")


@app.command()
def worker(
    queue: Annotated[str, typer.Option(help="The queue to take jobs from.")] = "default",
    workers: Annotated[
        int | None,
        typer.Option(help="Worker slots [default: cores and memory, or the Ray cluster].", min=1),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="parallel (local pool), distributed (Ray) or sequential.")
    ] = "parallel",
    ray_address: RayAddressOpt = None,
    ship_pages: ShipPagesOpt = "auto",
    cpus_per_worker: CpusOpt = 1.0,
    gpus_per_worker: GpusOpt = 0.0,
    exit_when_idle: Annotated[
        bool, typer.Option(help="Stop when the queue has no pending or running job.")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Process queued jobs: priority first, then age; fair share among equals.

    Ctrl-C or SIGTERM stops it; its pages in flight go back to the queue.
    """
    done = service.work(
        queue,
        db=db,
        mode=mode,
        workers=workers,
        exit_when_idle=exit_when_idle,
        handle_signals=True,
        ray_address=ray_address,
        ship_pages=ship_pages,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
    )
    out.print(f"worker stopped; jobs finished here: {', '.join(map(str, done)) or 'none'}")


@app.command()
def resume(
    job: JobArg,
    db: DbOpt = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Override the worker count.")] = None,
    here: Annotated[
        bool, typer.Option(help="Run a queued job in this process instead of its queue.")
    ] = False,
) -> None:
    """Continue a paused or interrupted job; finished pages are not redone.

    A queued job goes back to its queue (its workers continue it within a second).
    """
    if not here and service.job_queue(job, db=db):
        q = service.release(job, db=db)
        out.print(f"job {job} back in queue {q!r}")
        return
    _finish(
        service.resume(
            job,
            db=db,
            reporter=make_reporter(_state["progress"]),
            handle_signals=True,
            workers=workers,
        )
    )


@app.command("retry-failed")
def retry_failed(job: JobArg, db: DbOpt = None) -> None:
    """Run the failed pages of a job again, with fresh retries."""
    _finish(
        service.retry_failed(
            job, db=db, reporter=make_reporter(_state["progress"]), handle_signals=True
        )
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
    t.add_row("throughput", f"{_num(d['pages_per_s'])} pages/s")
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
) -> None:
    """Rebuild result files from the store."""
    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    summary = service.export(job, db=db, formats=formats, out=out_dir)
    out.print(f"exported job {summary['job']} ({', '.join(formats)})")


@app.command("eval")
def eval_job(
    job: JobArg,
    ground_truth: GroundTruthOpt = None,
    casefold: Annotated[
        bool | None, typer.Option("--casefold/--no-casefold", help="[default: the job's]")
    ] = None,
    ignore_chars: Annotated[str | None, typer.Option(help="[default: the job's]")] = None,
    min_confidence: MinConfidenceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    db: DbOpt = None,
) -> None:
    """Accuracy of a job against ground truth: a table per source folder.

    The scores are recorded on the job's pages; `export` scores again with the job's own
    settings (those of `run`) before it writes the results.
    """
    d = service.evaluate(
        job,
        db=db,
        ground_truth=ground_truth,
        casefold=casefold,
        ignore_chars=ignore_chars,
        min_confidence=min_confidence,
    )
    if as_json:
        out.print_json(json.dumps(d))
        return
    acc, review = d["accuracy"], d["review"]
    if acc is None:
        err.print(
            f"no ground truth found for job {d['job']} (looked for <name>.gt.txt beside "
            "each input, and under --ground-truth DIR if given)"
        )
        raise typer.Exit(1)
    norm = acc["normalization"]
    t = Table(
        "folder", "docs", "pages", "CER", "WER", "bag-of-words", "confidence", "review",
        title=f"job {d['job']} ({d['name']}): accuracy, casefold={norm['casefold']}"
        + (f", ignoring {norm['ignore_chars']!r}" if norm["ignore_chars"] else ""),
    )  # fmt: skip
    rows = [*acc["by_folder"].items(), ("all", acc)]
    for name, f in rows:
        if not f["documents"]:
            continue
        t.add_row(
            name, str(f["documents"]), str(f["pages"]),
            f"{f['cer']:.4f}", f"{f['wer']:.4f}", f"{f['bow']:.4f}",
            _num(f["mean_confidence"]), str(f["review_pages"]),
            end_section=name == rows[-2][0],
        )  # fmt: skip
    out.print(t)
    if review and review["pages"]:
        out.print(f"{review['pages']} pages under confidence {review['min_confidence']}:")
        for r in review["listed"]:
            out.print(f"  {r['path']} page {r['page']} ({r['confidence']:.3f})")


@app.command()
def engines(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """The installed OCR engines (entry-point group ocrbatch.engines)."""
    from .engines import engine_listing

    rows = engine_listing()
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "package": e.source,
                        "version": e.info.version if e.info else None,
                        "languages": list(e.info.languages) if e.info else [],
                        "device": e.info.device if e.info else None,
                        "error": e.error,
                    }
                    for e in rows
                ]
            )
        )
        return
    t = Table("engine", "version", "languages", "device", "package")
    for e in rows:
        if e.info is None:
            t.add_row(e.name, "-", "-", f"unavailable: {e.error}", e.source)
        else:
            langs = ", ".join(e.info.languages)
            t.add_row(e.name, e.info.version, langs, e.info.device, e.source)
    out.print(t)


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
