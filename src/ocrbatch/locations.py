"""Where ocrbatch keeps its own files unless told otherwise: the job store (a SQLite file
in the user's data folder, or OCRBATCH_DB), the page cache (OCRBATCH_CACHE) and the
workers' copies of objects from buckets (OCRBATCH_OBJECT_CACHE)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

__all__ = [
    "default_cache_dir",
    "default_data_dir",
    "default_db_url",
    "default_object_cache_dir",
    "object_cache_bytes",
]


def default_cache_dir() -> Path:
    """The preprocessed-page cache: OCRBATCH_CACHE, else the user's cache folder."""
    env = os.environ.get("OCRBATCH_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ocrbatch" / "pages"


def default_object_cache_dir() -> Path:
    """The workers' copies of objects: OCRBATCH_OBJECT_CACHE, else the user's cache
    folder (beside the page cache's default)."""
    env = os.environ.get("OCRBATCH_OBJECT_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ocrbatch" / "objects"


def object_cache_bytes() -> int:
    """The cap of that cache: OCRBATCH_OBJECT_CACHE_MB (default 8192 MB). Where a machine
    keeps its copies, and how many, is the machine's to say (a Ray node or queue worker
    has its own disk), not the job's: environment variables, not job options."""
    raw = os.environ.get("OCRBATCH_OBJECT_CACHE_MB", "8192")
    try:
        mb = float(raw)
    except ValueError:
        raise ConfigError(f"OCRBATCH_OBJECT_CACHE_MB: not a number of MB: {raw!r}") from None
    return max(0, int(mb * 2**20))


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
