"""Where a document's per-document output goes: <format folder>/<input tree>/<file name><suffix>.

The full input file name is kept (scan.png.txt, scan.pdf.xml), so that scan.png and
scan.pdf in one folder never overwrite each other's outputs.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

__all__ = ["document_path", "safe_relpath"]


def safe_relpath(rel: str) -> PurePosixPath:
    """``rel`` made safe to join under an output folder (no root, no ``..``)."""
    parts = [p for p in PurePosixPath(rel.replace(os.sep, "/")).parts if p not in ("/", "..", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath("document")


def document_path(root: Path, rel_path: str, suffix: str) -> Path:
    """The output file of the document at ``rel_path`` under ``root``."""
    return root / (str(safe_relpath(rel_path)) + suffix)
