"""Commands that start work: run a batch, submit it to a queue, work a queue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .. import service
from ..errors import ConfigError
from ..progress import make_reporter
from .app import (
    CasefoldOpt,
    CpusOpt,
    DbOpt,
    FailUnderOpt,
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


# The options of a job, shared by `run` (which runs it here) and `submit` (which queues it).
InputsArg = Annotated[list[str], typer.Argument(help="Files, folders, globs, or @list.txt.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
TimeoutOpt = Annotated[
    float, typer.Option(help="Seconds per page before its worker is killed.", min=0.001)
]
MaxRetriesOpt = Annotated[int, typer.Option(help="Retries of a failed page.", min=0)]
EngineOpt = Annotated[str, typer.Option(help="OCR engine (see `ocrbatch engines`).")]
LangOpt = Annotated[str | None, typer.Option(help="Tesseract languages, e.g. eng+deu.")]
PsmOpt = Annotated[int | None, typer.Option(help="Tesseract page segmentation mode.")]
ModelOpt = Annotated[str | None, typer.Option(help="Tesseract model: fast or standard.")]
TessdataOpt = Annotated[str | None, typer.Option(help="Folder with *.traineddata.")]
EngineOptOpt = Annotated[list[str] | None, typer.Option(help="Engine option KEY=VALUE.")]
FormatOpt = Annotated[
    str, typer.Option("--format", help="Comma list of jsonl, csv, json, txt, hocr, alto, pdf.")
]
NameOpt = Annotated[str | None, typer.Option(help="Job name.")]
DescriptionOpt = Annotated[str | None, typer.Option(help="Job description.")]
ForceOpt = Annotated[
    bool, typer.Option(help="OCR again documents already done (same content and config).")
]
RecycleOpt = Annotated[int, typer.Option(help="Replace a worker after N pages (0: never).", min=0)]
MaxPixelsOpt = Annotated[int, typer.Option(help="Refuse images with more pixels.", min=1)]
PriceOpt = Annotated[float, typer.Option(help="For the cost in the summary.", min=0)]
DpiOpt = Annotated[
    float, typer.Option(help="Resolution PDF pages are rendered at.", min=30, max=1200)
]
PagesOpt = Annotated[
    str | None, typer.Option(help="Pages of each document, e.g. 1-5,10,20- [default: all].")
]
ForceOcrOpt = Annotated[
    bool,
    typer.Option(
        "--force-ocr/--skip-text",
        help="OCR PDF pages that already have text, or take their text layer (default).",
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        help="User password of encrypted PDFs [env OCRBATCH_PDF_PASSWORD].",
        envvar="OCRBATCH_PDF_PASSWORD",
    ),
]
PreprocessOpt = Annotated[
    str,
    typer.Option(
        help="auto (check each page, fix what it needs), off, or a comma list of steps: "
        "grayscale, crop, orientation, deskew, denoise, upscale, binarize "
        "(auto,-step leaves a step out of auto).",
    ),
]
CacheDirOpt = Annotated[
    str | None,
    typer.Option(
        help="Cache of preprocessed pages [env OCRBATCH_CACHE; default: ~/.cache/ocrbatch/pages]."
    ),
]
CacheMaxOpt = Annotated[int, typer.Option(help="Size cap of the cache in MB (0: no cache).", min=0)]


# Command parameter -> config key, for the options `run` and `submit` share.
_JOB_KEYS = {
    "timeout": "timeout",
    "max_retries": "max_retries",
    "fmt": "formats",
    "recycle_after": "recycle_after",
    "max_pixels": "max_image_pixels",
    "price_per_cpu_hour": "price_per_cpu_hour",
    "dpi": "dpi",
    "pages": "pages",
    "force_ocr": "force_ocr",
    "password": "password",
    "preprocess": "preprocess",
    "cache_dir": "cache_dir",
    "cache_max_mb": "cache_max_mb",
    "ground_truth": "ground_truth",
    "casefold": "casefold",
    "ignore_chars": "ignore_chars",
    "min_confidence": "min_confidence",
}


def _job_config(params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A job's config from a command's parameters (its ``locals()``): the shared job
    options, plus ``extra``; --lang/--psm/--model/--tessdata are the Tesseract engine's."""
    engine = str(params["engine"])
    opts = parse_opts(params["engine_opt"])
    for k in ("lang", "psm", "model", "tessdata"):
        if params[k] is not None:
            if engine != "tesseract":
                raise ConfigError(f"--{k} applies to the tesseract engine only")
            opts[k] = params[k]
    shared = {key: params[name] for name, key in _JOB_KEYS.items()}
    return {"engine": engine, "engine_options": opts, **shared, **extra}


@app.command()
def run(
    inputs: InputsArg,
    out_dir: OutOpt = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [default: from cores and memory].", min=1)
    ] = None,
    timeout: TimeoutOpt = 120.0,
    max_retries: MaxRetriesOpt = 3,
    engine: EngineOpt = "tesseract",
    lang: LangOpt = None,
    psm: PsmOpt = None,
    model: ModelOpt = None,
    tessdata: TessdataOpt = None,
    engine_opt: EngineOptOpt = None,
    mode: Annotated[
        str, typer.Option(help="sequential, parallel (local pool) or distributed (Ray).")
    ] = "parallel",
    ray_address: RayAddressOpt = None,
    ship_pages: ShipPagesOpt = "auto",
    cpus_per_worker: CpusOpt = 1.0,
    gpus_per_worker: GpusOpt = 0.0,
    fmt: FormatOpt = "jsonl",
    name: NameOpt = None,
    description: DescriptionOpt = None,
    force: ForceOpt = False,
    recycle_after: RecycleOpt = 500,
    max_pixels: MaxPixelsOpt = 250_000_000,
    price_per_cpu_hour: PriceOpt = 0.05,
    dpi: DpiOpt = 300.0,
    pages: PagesOpt = None,
    force_ocr: ForceOcrOpt = False,
    password: PasswordOpt = None,
    preprocess: PreprocessOpt = "auto",
    cache_dir: CacheDirOpt = None,
    cache_max_mb: CacheMaxOpt = 2048,
    ground_truth: GroundTruthOpt = None,
    casefold: CasefoldOpt = False,
    ignore_chars: IgnoreCharsOpt = "",
    min_confidence: MinConfidenceOpt = None,
    fail_under: FailUnderOpt = 1.0,
    db: DbOpt = None,
) -> None:
    """OCR a batch of documents into --out (results.jsonl, summary.json, errors.jsonl).

    Where ground truth exists (<name>.gt.txt beside an input, or under --ground-truth
    DIR mirroring the inputs), CER, WER and bag-of-words error are recorded per page,
    per document and for the job (summary.json "accuracy"; `ocrbatch eval JOB`).
    """
    config = _job_config(
        locals(),
        mode=mode,
        workers=workers,
        ray_address=ray_address,
        ship_pages=ship_pages,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
    )
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
    finish(summary, db, fail_under)


@app.command()
def submit(
    inputs: InputsArg,
    out_dir: OutOpt = None,
    priority: Annotated[int, typer.Option(help="Higher runs first.")] = 0,
    queue: Annotated[str, typer.Option(help="The queue workers take it from.")] = "default",
    max_workers: Annotated[
        int | None, typer.Option(help="At most this many pages of the job at once.", min=1)
    ] = None,
    timeout: TimeoutOpt = 120.0,
    max_retries: MaxRetriesOpt = 3,
    engine: EngineOpt = "tesseract",
    lang: LangOpt = None,
    psm: PsmOpt = None,
    model: ModelOpt = None,
    tessdata: TessdataOpt = None,
    engine_opt: EngineOptOpt = None,
    fmt: FormatOpt = "jsonl",
    name: NameOpt = None,
    description: DescriptionOpt = None,
    force: ForceOpt = False,
    recycle_after: RecycleOpt = 500,
    max_pixels: MaxPixelsOpt = 250_000_000,
    price_per_cpu_hour: PriceOpt = 0.05,
    dpi: DpiOpt = 300.0,
    pages: PagesOpt = None,
    force_ocr: ForceOcrOpt = False,
    password: PasswordOpt = None,
    preprocess: PreprocessOpt = "auto",
    cache_dir: CacheDirOpt = None,
    cache_max_mb: CacheMaxOpt = 2048,
    ground_truth: GroundTruthOpt = None,
    casefold: CasefoldOpt = False,
    ignore_chars: IgnoreCharsOpt = "",
    min_confidence: MinConfidenceOpt = None,
    db: DbOpt = None,
) -> None:
    """Add a job to a queue without running it; `ocrbatch worker` processes run it.

    The job keeps every option given here; the worker that runs it decides only where
    (its mode, Ray address and worker slots).
    """
    config = _job_config(locals(), workers=max_workers)
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
