"""The engine seam: open once per worker, recognize many pages, close."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from ..config import validate
from ..errors import ConfigError, one_line
from ..model import PageTask, PageText

__all__ = [
    "Engine",
    "EngineBase",
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

    Its optional capabilities are declared here, as class attributes and classmethods
    with defaults in :class:`EngineBase` (an engine subclasses it and declares what
    differs); executors and the coordinator read them from the class, never by building
    an engine or probing with getattr.
    """

    name: ClassVar[str]
    # The engine's own options model (None: options are passed through unchecked).
    options_model: ClassVar[type[BaseModel] | None]
    # Resident memory one worker of this engine needs, for sizing the pool.
    memory_per_worker_mb: ClassVar[int]
    # Modules worth importing once in the forkserver, before workers fork.
    preload: ClassVar[tuple[str, ...]]
    # Takes batches of prepared pages (see engines/batch.py): a GPU engine.
    batched: ClassVar[bool]
    # False: recognize(None, task), no page decoded (a null engine, for overhead runs).
    reads_image: bool
    # A stand-in for tests (`ocrbatch engines` lists it only with --all).
    for_tests: ClassVar[bool]
    # open() may run in the pool's forkserver (it starts no thread, holds no device):
    # workers then fork with an engine of default options already open (see takes_over).
    opens_before_fork: ClassVar[bool]

    def __init__(
        self, options: Mapping[str, Any], *, timeout: float | None = None, threads: int = 1
    ) -> None:
        """``threads``: cores this one engine may use (1 in a pool, all when alone)."""
        ...

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        """Fail early, in the coordinator, when models or libraries are missing."""
        ...

    @classmethod
    def info(cls) -> EngineInfo:
        """What ``ocrbatch engines`` prints."""
        ...

    @classmethod
    def pages_per_batch(cls, options: Mapping[str, Any]) -> int:
        """Pages per device call of a batched engine with these options (1 otherwise)."""
        ...

    def open(self) -> None: ...

    def takes_over(
        self, options: Mapping[str, Any], *, timeout: float | None, threads: int
    ) -> bool:
        """Become the engine for these settings without loading anything again, and say
        so; False when it cannot (other options): the worker then builds one."""
        ...

    def recognize(self, image: Any, task: PageTask) -> PageText: ...

    def close(self) -> None: ...


class EngineBase:
    """The defaults of every optional capability of :class:`Engine`: an engine (ours or
    a third party's) subclasses this and declares only what differs."""

    name: ClassVar[str] = ""
    options_model: ClassVar[type[BaseModel] | None] = None
    memory_per_worker_mb: ClassVar[int] = 400
    preload: ClassVar[tuple[str, ...]] = ()
    batched: ClassVar[bool] = False
    reads_image: bool = True
    for_tests: ClassVar[bool] = False
    opens_before_fork: ClassVar[bool] = False

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        """Nothing to check by default."""

    @classmethod
    def info(cls) -> EngineInfo:
        return EngineInfo(cls.name, "?", (), "cpu")

    @classmethod
    def pages_per_batch(cls, options: Mapping[str, Any]) -> int:
        return 1

    def open(self) -> None:
        """Nothing to load by default."""

    def takes_over(
        self, options: Mapping[str, Any], *, timeout: float | None, threads: int
    ) -> bool:
        """Never by default: each worker builds its own engine."""
        return False

    def close(self) -> None:
        """Nothing to release by default."""


@functools.cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def engine_names() -> list[str]:
    """Names of the installed engines."""
    return sorted(_entry_points())


def engine_class(name: str) -> type[Engine]:
    """The engine class registered under ``name`` (it must declare the capabilities of
    :class:`Engine`, which subclassing :class:`EngineBase` gives)."""
    eps = _entry_points()
    if name not in eps:
        raise ConfigError(
            f"unknown engine {name!r} (installed: {', '.join(sorted(eps)) or 'none'})"
        )
    try:
        cls: type[Engine] = eps[name].load()
    except ImportError as exc:
        raise ConfigError(f"engine {name!r} cannot be loaded: {exc}") from None
    missing = [a for a in _CAPABILITIES if not hasattr(cls, a)]
    if missing:
        raise ConfigError(
            f"engine {name!r} ({eps[name].value}) does not declare {', '.join(missing)}: "
            "subclass ocrbatch.engines.EngineBase"
        )
    return cls


_CAPABILITIES = (
    "name",
    "options_model",
    "memory_per_worker_mb",
    "preload",
    "batched",
    "reads_image",
    "for_tests",
    "opens_before_fork",
    "check",
    "info",
    "pages_per_batch",
    "takes_over",
)


def engine_preload(name: str) -> list[str]:
    """Modules worth importing before workers fork: the engine's own module and the
    libraries it declares in ``preload``."""
    ep = _entry_points().get(name)
    if ep is None:
        return []
    return [ep.module, *engine_class(name).preload]


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
    for_tests: bool = False


def engine_listing() -> list[EngineListing]:
    """Every engine registered in the entry-point group, with its info or its problem."""
    out = []
    for name in engine_names():
        ep = _entry_points()[name]
        dist = getattr(ep, "dist", None)
        source = f"{dist.name} {dist.version}" if dist is not None else ep.value
        try:
            cls = engine_class(name)
            out.append(EngineListing(name, source, cls.info(), for_tests=cls.for_tests))
        except Exception as exc:  # a broken third-party engine must not hide the others
            msg = exc.message if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            out.append(EngineListing(name, source, None, one_line(msg)))
    return out
