"""The on-disk cache of preprocessed pages, shared by the workers of all jobs.

Keyed by the document's content hash, the page, the render dpi, the steps and their
parameters: a re-run with another engine or language finds the page already rendered
and preprocessed. An entry is ``<key>.json`` (what preprocessing did, the quality check)
and, when the page was changed, ``<key>.png``. Writes are atomic (temp file, rename) so
that concurrent workers never read half a file; the total size is capped, oldest
(least recently used) entries go first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["PageCache", "cache_key"]

# Bump when a step's algorithm changes: old entries then simply stop matching.
CACHE_VERSION = 1


def cache_key(content_hash: str, page_index: int, params: Mapping[str, Any]) -> str:
    """The key of one page under these preprocessing parameters."""
    doc = {"v": CACHE_VERSION, "h": content_hash, "p": page_index, **params}
    return hashlib.blake2b(json.dumps(doc, sort_keys=True).encode(), digest_size=20).hexdigest()


class PageCache:
    """A folder of cached pages holding at most ``max_bytes``."""

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._written = 0
        self._size: int | None = None

    def _paths(self, key: str) -> tuple[Path, Path]:
        sub = self.folder / key[:2]
        return sub / f"{key}.json", sub / f"{key}.png"

    def get(self, key: str) -> tuple[dict[str, Any], Image.Image | None] | None:
        """(info, image or None when the page was left as it was) or None on a miss."""
        meta, png = self._paths(key)
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            image = None
            if info.get("image"):
                with Image.open(png) as im:
                    im.load()
                    image = im
                dpi = info.get("dpi")
                if dpi:
                    image.info["dpi"] = (dpi, dpi)
            os.utime(meta)  # least recently used goes first
        except (OSError, ValueError, SyntaxError):
            return None  # a miss, or an entry evicted or damaged under us: redo the work
        return info["info"], image

    def put(self, key: str, info: Mapping[str, Any], image: Image.Image | None) -> None:
        """Store an entry; a full disk or a read-only folder only costs the cache."""
        if self.max_bytes <= 0:
            return
        meta, png = self._paths(key)
        try:
            meta.parent.mkdir(parents=True, exist_ok=True)
            added = 0
            dpi = None
            if image is not None:
                dpi = image.info.get("dpi")
                # Fastest zlib level: a cache entry is written once and read rarely; the
                # page costs seconds of OCR, the write tens of milliseconds.
                added += self._atomic(png, lambda f: image.save(f, "PNG", compress_level=1))
            doc = {"info": dict(info), "image": image is not None, "dpi": dpi and dpi[0]}
            data = json.dumps(doc).encode()
            added += self._atomic(meta, lambda f: f.write(data))
        except OSError:
            return
        self._grow(added)

    def _atomic(self, path: Path, write: Any) -> int:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path.stat().st_size

    def _grow(self, added: int) -> None:
        if self._size is None:
            self._size = self.size()
        self._size += added
        if self._size > self.max_bytes:
            self._size = self.evict(int(self.max_bytes * 0.9))

    def size(self) -> int:
        """Bytes in the cache now."""
        return sum(st.st_size for _, st in self._entries())

    def _entries(self) -> list[tuple[Path, os.stat_result]]:
        out: list[tuple[Path, os.stat_result]] = []
        if not self.folder.is_dir():
            return out
        for sub in self.folder.iterdir():
            if not sub.is_dir():
                continue
            for p in sub.iterdir():
                with contextlib.suppress(OSError):
                    out.append((p, p.stat()))
        return out

    def evict(self, target: int) -> int:
        """Delete least recently used entries until at most ``target`` bytes remain."""
        entries = self._entries()
        total = sum(st.st_size for _, st in entries)
        # An entry's age is its .json's (touched on every hit); its .png goes with it.
        age = {p.with_suffix(""): st.st_mtime for p, st in entries if p.suffix == ".json"}
        entries.sort(key=lambda e: age.get(e[0].with_suffix(""), 0.0))
        for p, st in entries:
            if total <= target:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                total -= st.st_size
        return total
