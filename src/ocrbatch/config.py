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
    "RunConfig",
    "TesseractOptions",
    "default_db_url",
    "validate",
]

KNOWN_FORMATS = ("jsonl", "csv", "json", "txt")
DEFAULT_FORMATS = ("jsonl",)


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

    def result_key(self) -> str:
        """Hash of what changes the OCR result (engine and its options), not how it runs.

        Two runs with the same key on the same content hash give the same text, so a
        document already done under this key is not OCRed again (unless --force).
        """
        doc = {"engine": self.engine, "options": self.engine_options}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def validate(model: type[BaseModel], data: dict[str, Any], what: str) -> Any:
    """Build ``model`` from ``data``; a validation failure becomes one ConfigError line."""
    try:
        return model(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or what
        raise ConfigError(f"invalid {what} option {loc}: {err['msg']}") from None


def default_db_url() -> str:
    """OCRBATCH_DB, else a SQLite file in the user's data folder (shared by all runs)."""
    env = os.environ.get("OCRBATCH_DB")
    if env:
        return env
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'ocrbatch' / 'jobs.db'}"
