"""What a worker needs to read a job's pages: plain data, picklable (it travels with
each task to the executors' workers, local or on a Ray cluster)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import RunConfig

__all__ = ["WorkerSpec"]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs to build its engine: plain data, picklable."""

    engine: str
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_pixels: int = 250_000_000
    dpi: float = 300.0
    force_ocr: bool = False
    password: str | None = None
    preprocess: str = "auto"
    cache_dir: str | None = None
    cache_max_mb: int = 2048
    image_dpi: float | None = None
    # Object storage: the storage library's options (endpoint...).
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    # Cores one engine may use: 1 in a pool (one engine per core), more when it runs alone.
    threads: int = 1

    @classmethod
    def of(cls, cfg: RunConfig, *, threads: int = 1) -> WorkerSpec:
        """The spec of a job's config: the one place that maps a config onto workers (the
        scheduler of `run` and the queue worker both use it)."""
        return cls(
            engine=cfg.engine,
            engine_options=cfg.engine_options,
            timeout=cfg.timeout,
            max_pixels=cfg.max_pixels,
            dpi=cfg.dpi,
            force_ocr=cfg.force_ocr,
            password=cfg.password,
            preprocess=cfg.preprocess,
            cache_dir=cfg.cache_dir,
            cache_max_mb=cfg.cache_max_mb,
            image_dpi=cfg.image_dpi,
            storage_options=cfg.storage_options,
            threads=threads,
        )
