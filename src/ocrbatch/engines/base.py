"""The engine seam: open once per worker, recognize many pages, close."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from ..config import validate
from ..errors import ConfigError
from ..model import PageTask, PageText

__all__ = [
    "Engine",
    "EngineInfo",
    "EngineListing",
    "engine_class",
    "engine_listing",
    "engine_names",
    "engine_preload",
    "validate_engine_options",
]

GROUP = "ocrbatch.engines"


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What ``ocrbatch engines`` prints about an installed engine."""

    name: str
    version: str
    languages: tuple[str, ...]
    device: str


@runtime_checkable
class Engine(Protocol):
    """An OCR engine. Built from validated options; ``open`` loads models (once per
    worker process, never per page); ``recognize`` returns data, never files.

    ``threads`` (optional: passed only to engines whose constructor takes it) is how
    many cores this one engine may use: 1 in a parallel pool (one engine per core), all
    of them in sequential mode. An optional classmethod
    ``info() -> EngineInfo`` feeds ``ocrbatch engines``; an optional classmethod
    ``check(options)`` fails early, in the coordinator, when models are missing.
    """

    name: ClassVar[str]
    options_model: ClassVar[type[BaseModel] | None]
    # Resident memory one worker of this engine needs, for sizing the pool.
    memory_per_worker_mb: ClassVar[int]

    def __init__(
        self, options: Mapping[str, Any], *, timeout: float | None = None, threads: int = 1
    ) -> None: ...

    def open(self) -> None: ...

    def recognize(self, image: Any, task: PageTask) -> PageText: ...

    def close(self) -> None: ...


@functools.cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def engine_names() -> list[str]:
    """Names of the installed engines."""
    return sorted(_entry_points())


def engine_class(name: str) -> type[Engine]:
    """The engine class registered under ``name``."""
    eps = _entry_points()
    if name not in eps:
        raise ConfigError(
            f"unknown engine {name!r} (installed: {', '.join(sorted(eps)) or 'none'})"
        )
    try:
        cls: type[Engine] = eps[name].load()
    except ImportError as exc:
        raise ConfigError(f"engine {name!r} cannot be loaded: {exc}") from None
    return cls


def engine_preload(name: str) -> list[str]:
    """Modules worth importing before workers fork: the engine's own module and the
    libraries it names in an optional ``preload`` class attribute."""
    ep = _entry_points().get(name)
    if ep is None:
        return []
    cls = engine_class(name)
    return [ep.module, *getattr(cls, "preload", ())]


def validate_engine_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options checked by the engine's own model, returned as plain data."""
    model = engine_class(name).options_model
    if model is None:
        return dict(options)
    out: dict[str, Any] = validate(model, dict(options), f"{name} engine").model_dump()
    return out


@dataclass(frozen=True, slots=True)
class EngineListing:
    """One installed engine as ``ocrbatch engines`` shows it: its info, or why it cannot
    be used (an optional dependency missing)."""

    name: str
    source: str
    info: EngineInfo | None
    error: str | None = None


def engine_listing() -> list[EngineListing]:
    """Every engine registered in the entry-point group, with its info or its problem."""
    out = []
    for name in engine_names():
        ep = _entry_points()[name]
        dist = getattr(ep, "dist", None)
        source = f"{dist.name} {dist.version}" if dist is not None else ep.value
        try:
            cls = engine_class(name)
            info_fn = getattr(cls, "info", None)
            info = info_fn() if info_fn is not None else EngineInfo(name, "?", (), "?")
            out.append(EngineListing(name, source, info))
        except Exception as exc:  # a broken third-party engine must not hide the others
            msg = exc.message if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            out.append(EngineListing(name, source, None, " ".join(msg.split())[:300]))
    return out
