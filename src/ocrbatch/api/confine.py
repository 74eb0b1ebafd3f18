"""Confinement: the API reads inputs and writes outputs only below the service's
allowed roots. A path with ``..``, an absolute path elsewhere, or one that resolves
(through a symlink) outside the roots is refused with 403 before anything is read: only
the path's own components are looked at (``realpath``), never a file's content."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import PurePosixPath

from .errors import ApiError

__all__ = ["Confinement"]

_GLOB = frozenset("*?[")


class Confinement:
    """The allowed roots (real paths) and the checks against them."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = tuple(os.path.realpath(r) for r in roots)

    def _under(self, path: str) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in self.roots)

    def path(self, raw: str, what: str) -> str:
        """``raw`` as an absolute path below a root (a relative one is taken below the
        first root), or ApiError 403/422 saying why not."""
        if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
            raise ApiError(422, f"{what}: give a path")
        if raw.startswith("@"):
            raise ApiError(
                422, f"{what} {raw!r}: list files are not taken by the API; name the files"
            )
        if "://" in raw:
            raise ApiError(403, f"{what} {raw!r}: only local paths below the allowed roots")
        parts = PurePosixPath(raw).parts
        if ".." in parts:
            raise ApiError(403, f"{what} {raw!r}: '..' is not allowed in paths")
        full = raw if os.path.isabs(raw) else os.path.join(self.roots[0], raw)
        full = os.path.normpath(full)
        if not self._under(full):
            raise ApiError(403, f"{what} {raw!r} is outside the allowed roots")
        base = full
        if _GLOB & set(full):
            keep = []
            for p in PurePosixPath(full).parts:
                if _GLOB & set(p):
                    break
                keep.append(p)
            base = str(PurePosixPath(*keep))
        if not self._under(os.path.realpath(base)):
            raise ApiError(
                403, f"{what} {raw!r} resolves (through a symlink) outside the allowed roots"
            )
        return full

    def paths(self, raws: Sequence[str], what: str) -> list[str]:
        return [self.path(r, what) for r in raws]
