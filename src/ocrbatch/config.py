"""Validated settings. Config is checked at the edges (CLI flags, env, API) and is plain
data inside: ``RunConfig.model_dump()`` is what the store keeps and workers receive."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, ValidationError, field_validator

from .engine_options import AutoEngineOptions, RapidOcrOptions, StrictModel, TesseractOptions
from .errors import ConfigError
from .locations import default_cache_dir, default_data_dir, default_db_url
from .specs import PREPROCESS_STEPS, parse_pages, parse_preprocess, select_pages

__all__ = [
    "DEFAULT_FORMATS",
    "KNOWN_FORMATS",
    "PREPROCESS_STEPS",
    "AutoEngineOptions",
    "RapidOcrOptions",
    "RunConfig",
    "TesseractOptions",
    "cli_fields",
    "default_cache_dir",
    "default_data_dir",
    "default_db_url",
    "option_name",
    "parse_pages",
    "parse_preprocess",
    "select_pages",
    "validate",
]

KNOWN_FORMATS = ("jsonl", "csv", "json", "txt", "hocr", "alto", "pdf")
DEFAULT_FORMATS = ("jsonl",)


def _opt(
    default: Any,
    help: str,
    *,
    panel: str,
    flags: tuple[str, ...] = (),
    metavar: str | None = None,
    scope: str = "job",
    envvar: str | None = None,
    aliases: tuple[str, ...] = (),
    **limits: Any,
) -> Any:
    """A RunConfig field with what the CLI shows for it (defined once, here).

    ``scope``: ``job`` (what the job is: `run` and `submit`), ``run`` (where and how it
    runs: `run` and `worker`, not `submit`) or ``queue`` (`submit` only). ``flags``:
    the option names when they are not just ``--field-name``. ``aliases``: every name
    the Python API accepts (the field's own first), for names of earlier releases.
    """
    cli: Any = {
        "help": help,
        "panel": panel,
        "flags": list(flags),
        "metavar": metavar,
        "scope": scope,
        "envvar": envvar,
    }
    if aliases:
        limits["validation_alias"] = AliasChoices(*aliases)
    return Field(default, description=help, json_schema_extra={"cli": cli}, **limits)


INPUT, ENGINE, OUTPUT, RUN, CLUSTER, ACCURACY = (
    "Input and pages",
    "Engine",
    "Output",
    "Execution",
    "Cluster (distributed mode)",
    "Accuracy",
)


class RunConfig(StrictModel):
    """Everything that defines a job and how it runs; stored with the job, and what
    resume reuses. Field names are the CLI's option names (``--max-pixels`` is
    ``max_pixels``), so ``ocrbatch.run(inputs, out, workers=2, format="jsonl,pdf")``
    reads like the command line; each field's help and default are the CLI's too."""

    # -- engine --------------------------------------------------------------------------
    engine: str = _opt(
        "tesseract", "OCR engine (see `ocrbatch engines`).", panel=ENGINE, metavar="NAME"
    )
    engine_options: dict[str, Any] = Field(
        default_factory=dict,
        description="The engine's own options (--engine-opt KEY=VALUE; --lang, --psm, "
        "--model, --tessdata for Tesseract).",
    )
    # -- execution -----------------------------------------------------------------------
    mode: Literal["sequential", "parallel", "distributed"] = _opt(
        "parallel",
        "sequential (one page at a time), parallel (a local process pool) or distributed "
        "(a Ray cluster).",
        panel=RUN,
        metavar="MODE",
        scope="run",
    )
    workers: int | None = _opt(
        None,
        "Worker processes, one page each at a time [default: one per core, fewer if "
        "memory is short; in distributed mode, from the cluster].",
        panel=RUN,
        flags=("--workers", "--jobs", "-j"),
        metavar="N",
        scope="run",
        ge=1,
        le=1024,
    )
    max_workers: int | None = _opt(
        None,
        "At most this many pages of the job at once, over all queue workers.",
        panel=RUN,
        metavar="N",
        scope="queue",
        ge=1,
    )
    timeout: float = _opt(
        120.0,
        "Seconds one page may take before its worker is killed and replaced.",
        panel=RUN,
        metavar="SECONDS",
        gt=0,
    )
    max_retries: int = _opt(
        3,
        "Retries of a page that failed (engine error, timeout, crash).",
        panel=RUN,
        metavar="N",
        ge=0,
        le=100,
    )
    retry_backoff: float = _opt(
        1.0,
        "Seconds before the first retry; doubled each time.",
        panel=RUN,
        metavar="SECONDS",
        ge=0,
    )
    retry_backoff_max: float = _opt(
        60.0, "Longest wait between two retries.", panel=RUN, metavar="SECONDS", ge=0
    )
    worker_nice: int = _opt(
        10,
        "CPU priority of the worker processes, as nice (0-19): the coordinator, the "
        "service and your shell stay responsive while the workers take every idle core.",
        panel=RUN,
        metavar="N",
        scope="run",
        ge=0,
        le=19,
    )
    recycle_after: int = _opt(
        500, "Replace a worker after N pages (0: never).", panel=RUN, metavar="N", ge=0
    )
    price_per_cpu_hour: float = _opt(
        0.05, "Price of a CPU hour, for the cost in the summary.", panel=RUN, metavar="PRICE", ge=0
    )
    # -- output --------------------------------------------------------------------------
    format: tuple[str, ...] = _opt(
        DEFAULT_FORMATS,
        "Result formats, a comma list: jsonl (always written), csv, json, txt, hocr, alto, "
        "pdf (searchable PDF).",
        panel=OUTPUT,
        metavar="LIST",
        aliases=("format", "formats"),
    )
    # -- pages and preprocessing (these change the result: see result_key) --------------
    dpi: float = _opt(
        300.0, "Resolution PDF pages are rendered at.", panel=INPUT, metavar="DPI", ge=30, le=1200
    )
    pages: str | None = _opt(
        None, "Pages of each document, e.g. 1-5,10,20- [default: all].", panel=INPUT, metavar="LIST"
    )
    # OCRmyPDF's --skip-text (default) / --force-ocr.
    force_ocr: bool = _opt(
        False,
        "OCR PDF pages that already have text (--force-ocr), or take their text layer "
        "(--skip-text).",
        panel=INPUT,
        flags=("--force-ocr/--skip-text",),
    )
    preprocess: str = _opt(
        "auto",
        "auto (check each page, fix only what it needs), off, or a comma list of steps: "
        "grayscale, crop, orientation, deskew, denoise, upscale, binarize (auto,-STEP "
        "leaves one out of auto).",
        panel=INPUT,
        metavar="SPEC",
    )
    image_dpi: float | None = _opt(
        None,
        "Resolution of images that state none, for their page size (searchable PDF) "
        "[default: estimated from the letter height].",
        panel=INPUT,
        metavar="DPI",
        ge=30,
        le=2400,
    )
    max_pixels: int = _opt(
        250_000_000,
        "Refuse images with more pixels (decompression bombs); PDF pages are rendered at "
        "a lower dpi to fit.",
        panel=INPUT,
        metavar="N",
        aliases=("max_pixels", "max_image_pixels"),
        ge=1,
    )
    # -- how it runs (not part of the result) -------------------------------------------
    # The user password of encrypted PDFs; kept with the job while it may run, forgotten
    # when it ends (see Store.forget_password).
    password: str | None = _opt(
        None,
        "User password of encrypted PDFs (prefer the environment variable: a command "
        "line is visible to other users).",
        panel=INPUT,
        envvar="OCRBATCH_PDF_PASSWORD",
        metavar="TEXT",
    )
    cache_dir: str | None = _opt(
        None,
        "Cache of preprocessed pages [default: ~/.cache/ocrbatch/pages].",
        panel=INPUT,
        envvar="OCRBATCH_CACHE",
        metavar="PATH",
    )
    cache_max_mb: int = _opt(
        2048, "Size cap of that cache in MB (0: no cache).", panel=INPUT, metavar="MB", ge=0
    )
    storage_options: dict[str, Any] = _opt(  # credentials: never here (README)
        {},
        "An option of the object-storage library (repeatable), e.g. endpoint_url=URL.",
        panel=INPUT,
        flags=("--storage-option",),
    )

    # -- accuracy ------------------------------------------------------------------------
    # <name>.gt.txt next to each input is always looked for; with ground_truth, also
    # DIR/<input tree>/<name>.gt.txt (see ocrbatch.groundtruth).
    ground_truth: str | None = _opt(
        None,
        "Folder of NAME.gt.txt files mirroring the inputs' tree.",
        panel=ACCURACY,
        metavar="PATH",
    )
    casefold: bool = _opt(
        False,
        "Score accuracy case-insensitively.",
        panel=ACCURACY,
        flags=("--casefold/--no-casefold",),
    )
    ignore_chars: str = _opt(
        "",
        "Characters dropped from both sides before scoring, e.g. '~'.",
        panel=ACCURACY,
        metavar="CHARS",
    )
    min_confidence: float | None = _opt(
        None,
        "Flag pages under this confidence (0..1) for review.",
        panel=ACCURACY,
        metavar="RATE",
        ge=0.0,
        le=1.0,
    )

    # -- distributed mode (Ray) ----------------------------------------------------------
    ray_address: str | None = _opt(
        None,
        "The Ray cluster: auto or ray://host:port [default: a local Ray instance].",
        panel=CLUSTER,
        envvar="RAY_ADDRESS",
        metavar="URL",
        scope="run",
    )
    ship_pages: Literal["auto", "always", "never"] = _opt(
        "auto",
        "Send page bytes to workers: auto (to nodes that do not see the files), always or never.",
        panel=CLUSTER,
        metavar="WHEN",
        scope="run",
    )
    cpus_per_worker: float = _opt(
        1.0, "CPUs one worker reserves.", panel=CLUSTER, metavar="N", scope="run", gt=0
    )
    gpus_per_worker: float = _opt(
        0.0, "GPUs one worker reserves.", panel=CLUSTER, metavar="N", scope="run", ge=0
    )

    @field_validator("pages")
    @classmethod
    def _check_pages(cls, v: str | None) -> str | None:
        if v is None:
            return None
        return ",".join(
            f"{a}-{'' if b is None else b}" if a != b else str(a) for a, b in parse_pages(v)
        )

    @field_validator("preprocess")
    @classmethod
    def _check_preprocess(cls, v: str) -> str:
        mode, steps = parse_preprocess(v)
        if mode == "off":
            return "off"
        if mode == "auto":
            dropped = [s for s in PREPROCESS_STEPS if s not in steps]
            return ",".join(["auto", *(f"-{s}" for s in dropped)])
        return ",".join(steps)

    @field_validator("format", mode="before")
    @classmethod
    def _split_formats(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.split(",")
        return tuple(str(f).strip().lower() for f in v if str(f).strip())

    @field_validator("format")
    @classmethod
    def _known_formats(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [f for f in v if f not in KNOWN_FORMATS]
        if bad:
            raise ValueError(f"unknown format {bad[0]!r} (known: {', '.join(KNOWN_FORMATS)})")
        return tuple(dict.fromkeys(("jsonl", *v)))  # results.jsonl is always written

    @field_validator("ground_truth")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        # Stored with the job: resume and eval may run from another folder.
        return os.path.abspath(os.path.expanduser(v)) if v else v

    def result_key(self) -> str:
        """Hash of what changes the OCR result (engine and its options, dpi, pages, text
        layer or OCR, preprocessing), not how it runs.

        Two runs with the same key on the same content hash give the same text, so a
        document already done under this key is not OCRed again (unless --force).
        """
        doc = {
            "engine": self.engine,
            "options": self.engine_options,
            "dpi": self.dpi,
            "pages": self.pages,
            "force_ocr": self.force_ocr,
            "preprocess": self.preprocess,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def cli_fields(scope: str) -> dict[str, Any]:
    """RunConfig's fields a command carries, with their CLI facts (see ``_opt``):
    ``job`` fields for `submit` (plus ``queue``), ``job`` and ``run`` fields for `run`,
    ``run`` fields for `worker`."""
    wanted = {"run": {"job", "run"}, "submit": {"job", "queue"}, "worker": {"run"}}[scope]
    out: dict[str, Any] = {}
    for name, f in RunConfig.model_fields.items():
        extra = f.json_schema_extra
        cli = extra.get("cli") if isinstance(extra, dict) else None
        if isinstance(cli, dict) and cli["scope"] in wanted:
            out[name] = (f, cli)
    return out


def validate(model: type[BaseModel], data: dict[str, Any], what: str) -> Any:
    """Build ``model`` from ``data``; a validation failure becomes one ConfigError line
    in the words of the command line: the option's name (``--timeout``; an engine's
    option as ``--engine-opt NAME``), what was wrong, what was given."""
    try:
        return model(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        given = err.get("input")
        shown = "" if isinstance(given, dict) or given is None else f" (given: {given!r})"
        raise ConfigError(f"{option_name(model, field, what)}: {msg}{shown}") from None


def option_name(model: type[BaseModel], field: str, what: str) -> str:
    """How a person names ``field`` of ``model``: its CLI option."""
    if not field:
        return what
    if model is RunConfig:
        extra = RunConfig.model_fields[field].json_schema_extra
        cli = extra.get("cli") if isinstance(extra, dict) else None
        flags = cli.get("flags") if isinstance(cli, dict) else None
        if isinstance(flags, list) and flags:
            return str(flags[0]).split("/")[0]
        return f"--{field.replace('_', '-')}"
    if model is TesseractOptions and field in ("lang", "psm", "model", "tessdata"):
        return f"--{field}"
    return f"--engine-opt {field} ({what})"
