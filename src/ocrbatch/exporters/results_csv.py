"""results.csv: a row per document, cells a spreadsheet never runs as formulas."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .atomic import atomic_writer
from .records import Outputs, Raw, document_record

__all__ = ["CSV_FIELDS", "csv_cell", "write_csv"]


CSV_FIELDS = (
    "path",
    "rel_path",
    "status",
    "pages",
    "confidence",
    "processing_time",
    "cer",
    "wer",
    "bow",
    "review_pages",
    "error",
    "text",
)

# OWASP's CSV injection rule: a spreadsheet may run a cell that starts with one of these
# as a formula. LF is not on OWASP's list; a cell starting with it is rare enough that
# guarding it too costs nothing.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` (shown
    as text); numbers and other values as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(docs: Iterable[Raw], out: Path, outputs: Outputs) -> Path:
    path = out / "results.csv"
    with atomic_writer(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for d in docs:
            rec = document_record(d)
            acc = rec["accuracy"] or {}
            rec.update({k: acc.get(k) for k in ("cer", "wer", "bow")})
            rec["review_pages"] = " ".join(map(str, rec["review_pages"]))
            w.writerow({k: csv_cell(rec[k]) for k in CSV_FIELDS})
    return path
