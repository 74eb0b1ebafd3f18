"""Commands that start work: run a batch, submit it to a queue, work a queue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import service
from ..errors import ConfigError
from ..progress import make_reporter
from .app import (
    CasefoldOpt,
    CpusOpt,
    DbOpt,
    GpusOpt,
    GroundTruthOpt,
    IgnoreCharsOpt,
    MinConfidenceOpt,
    RayAddressOpt,
    ShipPagesOpt,
    app,
    finish,
    out,
    parse_opts,
    state,
)

__all__: list[str] = []


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
    opts = parse_opts(engine_opt)
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
        reporter=make_reporter(state["progress"]),
        handle_signals=True,
    )
    finish(summary)


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
        "engine_options": parse_opts(engine_opt),
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
