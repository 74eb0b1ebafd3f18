"""The on-disk cache of preprocessed pages, shared by the workers of all jobs.

Keyed by the document's content hash, the page, the render dpi, the steps and their
parameters: a re-run with another engine or language finds the page already rendered
and preprocessed. An entry is ``<key>.json`` (what preprocessing did, the quality check)
and, when the page was changed, ``<key>.png``. A hit gives back the page exactly as it was
put: the same pixels, mode, size and dpi (the attributes the engines read; the dpi goes in
the JSON, exact, since PNG stores it rounded and Pillow writes it only when asked), as a
plain in-memory image like a fresh one, not one marked as decoded from a PNG file (which
tesserocr once encoded differently, issue 10). Writes are atomic (temp file, rename) so
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

# Bump when a step's algorithm or the entry format changes: old entries then simply stop
# matching. 2: the image's mode, size and exact (x, y) dpi are recorded and checked.
CACHE_VERSION = 2


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
            doc = json.loads(meta.read_text(encoding="utf-8"))
            image = _read_image(png, doc["image"]) if doc.get("image") else None
            os.utime(meta)  # least recently used goes first
        except (OSError, ValueError, SyntaxError, KeyError, TypeError):
            return None  # a miss, or an entry evicted or damaged under us: redo the work
        return doc["info"], image

    def put(self, key: str, info: Mapping[str, Any], image: Image.Image | None) -> None:
        """Store an entry; a full disk or a read-only folder only costs the cache."""
        if self.max_bytes <= 0:
            return
        meta, png = self._paths(key)
        try:
            meta.parent.mkdir(parents=True, exist_ok=True)
            added = 0
            if image is not None:
                # Fastest zlib level: a cache entry is written once and read rarely; the
                # page costs seconds of OCR, the write tens of milliseconds.
                added += self._atomic(png, lambda f: image.save(f, "PNG", compress_level=1))
            doc = {"info": dict(info), "image": None if image is None else _attributes(image)}
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


def _attributes(image: Image.Image) -> dict[str, Any]:
    """What a hit must give back besides the pixels (see the module docstring)."""
    dpi = image.info.get("dpi")
    if dpi is not None and not isinstance(dpi, tuple):
        dpi = (dpi, dpi)
    return {
        "mode": image.mode,
        "size": list(image.size),
        "dpi": None if dpi is None else [float(dpi[0]), float(dpi[1])],
    }


def _read_image(png: Path, attrs: Mapping[str, Any]) -> Image.Image:
    """The cached page, as a plain image with the recorded dpi; ValueError when the file
    is not the page that was put (then it is a miss)."""
    with Image.open(png) as im:
        im.load()
        if im.mode != attrs["mode"] or list(im.size) != list(attrs["size"]):
            raise ValueError("cache entry does not match its record")
        image = im.copy()  # not a PngImageFile: nothing downstream may tell it apart
    image.info = {}
    if attrs.get("dpi"):
        x, y = attrs["dpi"]
        image.info["dpi"] = (float(x), float(y))
    return image
