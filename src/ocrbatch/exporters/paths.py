"""Where a document's per-document output goes: <format folder>/<input tree>/<file name><suffix>.

The full input file name is kept (scan.png.txt, scan.pdf.xml), so that scan.png and
scan.pdf in one folder never overwrite each other's outputs. A name (or folder) that
would pass the file-system limit of 255 bytes per path component is shortened, the
same way for every format: as much of the name as fits, ``~`` and 8 hex digits of a hash
of the full name, then the suffix. results.jsonl records where each file went
(``outputs``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

__all__ = [
    "DOCUMENT_FORMATS",
    "NAME_MAX",
    "document_path",
    "fit_name",
    "output_relpath",
    "safe_relpath",
]

NAME_MAX = 255  # bytes per path component (ext4, XFS, btrfs and most others)

# Per-document formats: folder under --out and file suffix.
DOCUMENT_FORMATS: dict[str, tuple[str, str]] = {
    "txt": ("text", ".txt"),
    "hocr": ("hocr", ".hocr"),
    "alto": ("alto", ".xml"),
    "pdf": ("pdf", ".pdf"),
}


def _nbytes(s: str) -> int:
    # surrogatepass: a name decoded with surrogateescape (non-UTF-8 bytes) still counts.
    return len(s.encode("utf-8", "surrogatepass"))


def fit_name(name: str, suffix: str = "", limit: int = NAME_MAX) -> str:
    """``name + suffix``, or, when that is over ``limit`` bytes (UTF-8), the longest head
    of ``name`` that fits with ``~<8 hex of a hash of name>`` and ``suffix``.

    Deterministic, so a later export writes to the same place; the hash is of ``name``
    alone, so one document's files in every format share it.
    """
    full = name + suffix
    if _nbytes(full) <= limit:
        return full
    tail = "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8] + suffix
    budget = limit - _nbytes(tail)
    head, used = [], 0
    for ch in name:
        n = _nbytes(ch)
        if used + n > budget:
            break
        head.append(ch)
        used += n
    return "".join(head) + tail


def safe_relpath(rel: str) -> PurePosixPath:
    """``rel`` made safe to join under an output folder (no root, no ``..``)."""
    parts = [p for p in PurePosixPath(rel.replace(os.sep, "/")).parts if p not in ("/", "..", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath("document")


def _fitted_parts(rel_path: str, suffix: str) -> list[str]:
    *folders, name = safe_relpath(rel_path).parts
    return [*(fit_name(f) for f in folders), fit_name(name, suffix)]


def document_path(root: Path, rel_path: str, suffix: str) -> Path:
    """The output file of the document at ``rel_path`` under ``root``."""
    return root.joinpath(*_fitted_parts(rel_path, suffix))


def output_relpath(fmt: str, rel_path: str) -> PurePosixPath:
    """Where format ``fmt`` (one of DOCUMENT_FORMATS) puts the document at ``rel_path``,
    relative to the output folder: what results.jsonl records in ``outputs``."""
    folder, suffix = DOCUMENT_FORMATS[fmt]
    return PurePosixPath(folder, *_fitted_parts(rel_path, suffix))
