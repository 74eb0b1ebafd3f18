"""Validated settings. Config is checked at the edges (CLI flags, env, API) and is plain
data inside: ``RunConfig.model_dump()`` is what the store keeps and workers receive."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

__all__ = [
    "DEFAULT_FORMATS",
    "KNOWN_FORMATS",
    "PREPROCESS_STEPS",
    "RapidOcrOptions",
    "RunConfig",
    "TesseractOptions",
    "default_cache_dir",
    "default_data_dir",
    "default_db_url",
    "parse_pages",
    "parse_preprocess",
    "select_pages",
    "validate",
]

KNOWN_FORMATS = ("jsonl", "csv", "json", "txt", "hocr", "alto", "pdf")
DEFAULT_FORMATS = ("jsonl",)
# The preprocessing steps, in the order they run (ocrbatch.preprocess implements them).
PREPROCESS_STEPS = (
    "grayscale",
    "crop",
    "orientation",
    "deskew",
    "denoise",
    "upscale",
    "binarize",
)


def parse_preprocess(spec: str) -> tuple[str, tuple[str, ...]]:
    """``auto`` | ``off`` | a comma list of steps -> (mode, steps) in canonical order.

    ``auto`` checks each page and runs only the steps it needs, out of all steps or out
    of those left after ``-step`` exclusions (``auto,-binarize``); a plain list runs
    exactly those steps on every page; ``off`` runs none.
    """
    items = [x.strip().lower() for x in spec.split(",") if x.strip()]
    if not items:
        raise ValueError("empty --preprocess (use auto, off or a list of steps)")
    auto = "auto" in items
    if items == ["off"]:
        return "off", ()
    named = [x for x in items if x != "auto"]
    for x in named:
        step = x.removeprefix("-")
        if step not in PREPROCESS_STEPS:
            raise ValueError(
                f"unknown preprocessing step {step!r} (steps: {', '.join(PREPROCESS_STEPS)};"
                " or auto, off)"
            )
        if x.startswith("-") and not auto:
            raise ValueError(f"{x!r} only makes sense after auto (e.g. auto,{x})")
        if not x.startswith("-") and auto:
            raise ValueError(f"auto already considers {x!r}; list steps without auto to force them")
    if auto:
        dropped = {x[1:] for x in named}
        return "auto", tuple(s for s in PREPROCESS_STEPS if s not in dropped)
    return "fixed", tuple(s for s in PREPROCESS_STEPS if s in named)


def parse_pages(spec: str) -> tuple[tuple[int, int | None], ...]:
    """``1-5,10,20-`` -> 1-based inclusive ranges (None: to the last page)."""
    out: list[tuple[int, int | None]] = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first = int(lo) if lo.strip() else 1
            last = (int(hi) if hi.strip() else None) if dash else first
        except ValueError:
            raise ValueError(f"bad page range {part!r} (expected e.g. 1-5,10,20-)") from None
        if first < 1 or (last is not None and last < first):
            raise ValueError(f"bad page range {part!r} (pages count from 1, low-high)")
        out.append((first, last))
    if not out:
        raise ValueError("empty --pages")
    return tuple(out)


def select_pages(spec: str | None, page_count: int) -> tuple[int, ...]:
    """0-based indexes of the pages of a ``page_count``-page document that ``spec`` picks,
    in order, each once (pages past the end are ignored)."""
    if spec is None:
        return tuple(range(page_count))
    chosen: set[int] = set()
    for first, last in parse_pages(spec):
        end = page_count if last is None else min(last, page_count)
        chosen.update(range(first - 1, end))
    return tuple(sorted(chosen))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TesseractOptions(_Model):
    """Options of the Tesseract engine."""

    lang: str = Field("eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
    # PSM 3 (automatic layout) keeps two-column pages in reading order; PSM 6 interleaves.
    psm: int = Field(3, ge=0, le=13)
    # "fast" (tessdata_fast, int8 LSTM) measured ~30% faster than "standard" at about the
    # same accuracy on clean pages, so it is the default.
    model: Literal["fast", "standard"] = "fast"
    tessdata: str | None = None
    # Tesseract's own per-page cooperative timeout; the pool's hard timeout backs it up.
    variables: dict[str, str] = Field(default_factory=dict)


class RapidOcrOptions(_Model):
    """Options of the RapidOCR engine (PP-OCR models shipped in the ``rapidocr`` wheel)."""

    # Longest side the page is scaled down to before detection; text lines are cut from
    # that scaled page, so it bounds recognition too. Measured on dev-corpus pages
    # (README, "RapidOCR detection size"): 960 loses small text (oldbooks bag-of-words
    # error 0.087 vs 0.035), 2560 is no better than 2000 and much slower; 2000 it is.
    max_side: int = Field(2000, ge=320, le=20_000)
    # Pages whose shorter side is below this are scaled up for detection (library default).
    det_min_side: int = Field(736, ge=32, le=4096)
    # Text lines recognized per onnxruntime call (lines are sorted by width, then batched).
    rec_batch: int = Field(6, ge=1, le=256)
    # Lines whose recognition score is below this are dropped (library default 0.5).
    text_score: float = Field(0.5, ge=0.0, le=1.0)
    # The line orientation classifier flips upright English lines: off unless pages come
    # in upside down.
    classifier: bool = False


class RunConfig(_Model):
    """Everything that defines how a job runs. Stored with the job; resume reuses it."""

    engine: str = "tesseract"
    engine_options: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["sequential", "parallel", "distributed"] = "parallel"
    workers: int | None = Field(None, ge=1, le=1024)
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0, le=100)
    retry_backoff: float = Field(1.0, ge=0)
    retry_backoff_max: float = Field(60.0, ge=0)
    recycle_after: int = Field(500, ge=0)  # tasks per worker before it is replaced; 0 = never
    batch_size: int = Field(64, ge=1, le=100_000)  # outcomes per store commit
    max_image_pixels: int = Field(250_000_000, ge=1)
    price_per_cpu_hour: float = Field(0.05, ge=0)
    formats: tuple[str, ...] = DEFAULT_FORMATS
    # -- pages and preprocessing (these change the result: see result_key) ---------------
    dpi: float = Field(300.0, ge=30, le=1200)  # PDF pages are rendered at this resolution
    pages: str | None = None  # e.g. "1-5,10": which pages of each document (1-based)
    # OCRmyPDF's --skip-text (default) / --force-ocr: a PDF page that already has text is
    # taken from its text layer without OCR, unless force_ocr.
    force_ocr: bool = False
    preprocess: str = "auto"  # auto | off | comma list of steps (see parse_preprocess)
    # -- how it runs (not part of the result) -------------------------------------------
    # The user password of encrypted PDFs; kept with the job so that resume can open them.
    password: str | None = None
    # The worker-side cache of preprocessed pages (None: the user's cache folder).
    cache_dir: str | None = None
    cache_max_mb: int = Field(2048, ge=0)  # size cap, oldest entries evicted; 0: no cache

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

    # Accuracy validation: <name>.gt.txt next to each input is always looked for; with
    # ground_truth, also DIR/<input tree>/<name>.gt.txt (see ocrbatch.groundtruth).
    ground_truth: str | None = None
    casefold: bool = False  # compare case-insensitively
    ignore_chars: str = ""  # characters dropped from both sides before scoring (e.g. "~")
    # Pages whose mean word confidence is below this are flagged for review.
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)

    # Distributed mode (Ray): where the cluster is (None: RAY_ADDRESS, else a local Ray),
    # whether page bytes travel to workers (auto: to nodes that do not see the files),
    # and what one worker slot reserves on the cluster.
    ray_address: str | None = None
    ship_pages: Literal["auto", "always", "never"] = "auto"
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(0.0, ge=0)

    @field_validator("formats", mode="before")
    @classmethod
    def _split_formats(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [f.strip() for f in v.split(",") if f.strip()]
        return tuple(v)

    @field_validator("formats")
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


def validate(model: type[BaseModel], data: dict[str, Any], what: str) -> Any:
    """Build ``model`` from ``data``; a validation failure becomes one ConfigError line."""
    try:
        return model(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or what
        raise ConfigError(f"invalid {what} option {loc}: {err['msg']}") from None


def default_cache_dir() -> Path:
    """The preprocessed-page cache: OCRBATCH_CACHE, else the user's cache folder."""
    env = os.environ.get("OCRBATCH_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ocrbatch" / "pages"


def default_data_dir() -> Path:
    """The user's ocrbatch data folder (the default store lives there)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "ocrbatch"


def default_db_url() -> str:
    """OCRBATCH_DB, else a SQLite file in the user's data folder (shared by all runs)."""
    env = os.environ.get("OCRBATCH_DB")
    if env:
        return env
    return f"sqlite:///{default_data_dir() / 'jobs.db'}"
