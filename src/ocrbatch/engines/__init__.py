"""OCR engines: the :class:`Engine` protocol and a registry fed by entry points.

An engine is found by name in the ``ocrbatch.engines`` entry-point group, so a third
party adds one by declaring an entry point in its own package, no fork needed.
"""

from __future__ import annotations

from .base import (
    Engine,
    EngineBase,
    EngineInfo,
    EngineListing,
    engine_class,
    engine_listing,
    engine_names,
    validate_engine_options,
)

__all__ = [
    "Engine",
    "EngineBase",
    "EngineInfo",
    "EngineListing",
    "engine_class",
    "engine_listing",
    "engine_names",
    "validate_engine_options",
]
