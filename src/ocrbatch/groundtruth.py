"""Ground truth for a document, and its scores page by page.

Where the ground truth of ``scans/a/page.png`` is looked for, first match wins:

1. with ``--ground-truth DIR``: ``DIR/<input tree>/page.gt.txt``, then
   ``DIR/<input tree>/page.png.gt.txt`` (``<input tree>`` is the document's path relative
   to its input root, as in the output folders);
2. next to the input: ``scans/a/page.gt.txt``, then ``scans/a/page.png.gt.txt``.

A ground-truth file is UTF-8 text. For a document of several pages (a TIFF or PDF),
its pages are separated by form feeds (``\\f``), as ocrbatch writes them; if the count of
parts differs from the document's pages, the document is scored as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .accuracy import Score, pooled, score

__all__ = [
    "DocumentScores",
    "GroundTruthRules",
    "find_ground_truth",
    "read_ground_truth",
    "score_document",
]

SUFFIX = ".gt.txt"


@dataclass(frozen=True, slots=True)
class GroundTruthRules:
    """Where ground truth lives and how text is compared (see :mod:`ocrbatch.accuracy`)."""

    folder: str | None = None
    casefold: bool = False
    ignore_chars: str = ""


def _candidates(folder: Path, name: str) -> list[Path]:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return [folder / (stem + SUFFIX), folder / (name + SUFFIX)]


def find_ground_truth(path: str, rel_path: str, rules: GroundTruthRules) -> Path | None:
    """The ground-truth file of the document at ``path`` (``rel_path`` under its root)."""
    name = os.path.basename(path)
    found: list[Path] = []
    if rules.folder:
        rel = PurePosixPath(rel_path.replace(os.sep, "/"))
        parts = [p for p in rel.parent.parts if p not in ("/", "..", ".")]
        found += _candidates(Path(rules.folder).joinpath(*parts), name)
    found += _candidates(Path(path).parent, name)
    return next((p for p in found if _is_file(p)), None)


def _is_file(path: Path) -> bool:
    # A candidate the file system cannot even look up (a name over 255 bytes: the input
    # was named near the limit; a folder we may not read) is simply not there.
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class DocumentScores:
    """Scores of one document: per page where the ground truth splits into its pages,
    else one score for the whole document (``pages`` is then empty)."""

    pages: dict[int, Score]
    document: Score


def score_document(
    page_texts: Sequence[tuple[int, str | None]], reference: str, rules: GroundTruthRules
) -> DocumentScores:
    """Score a document's pages (index, text or None for a failed page) against its
    ground truth; a failed page counts as empty output (every reference character an
    error), so a run that loses pages cannot look accurate."""

    def sc(hyp: str, ref: str) -> Score:
        return score(hyp, ref, casefold=rules.casefold, ignore=rules.ignore_chars)

    parts = reference.split("\f")
    if len(parts) == len(page_texts):
        pages = {i: sc(text or "", ref) for (i, text), ref in zip(page_texts, parts, strict=True)}
        return DocumentScores(pages, pooled(pages.values()))
    whole = "\n".join(text or "" for _, text in page_texts)
    return DocumentScores({}, sc(whole, reference))


def read_ground_truth(path: Path) -> str | None:
    """The text of a ground-truth file, or None if it cannot be read as UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
