"""The result formats: jsonl, csv, json, txt (one text file per document), and the layout
formats hOCR, ALTO and searchable PDF (one file per document, see their modules)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from .atomic import atomic_writer, remove_stale_temp_files
from .layout_xml import export_alto, export_hocr
from .paths import document_path, safe_relpath
from .records import document_record

__all__ = ["EXPORTERS", "Exporter", "export_all", "remove_stale_temp_outputs", "safe_relpath"]

Raw = Mapping[str, Any]


class Exporter(Protocol):
    """Writes the documents of a job into ``out``; returns the paths it wrote."""

    def __call__(self, docs: Iterable[Raw], out: Path) -> list[Path]: ...


def _jsonl(docs: Iterable[Raw], out: Path) -> list[Path]:
    path = out / "results.jsonl"
    with atomic_writer(path) as f:
        for d in docs:
            f.write(json.dumps(document_record(d), ensure_ascii=False) + "\n")
    return [path]


def _json(docs: Iterable[Raw], out: Path) -> list[Path]:
    # Streamed: one record at a time, never the whole list in memory.
    path = out / "results.json"
    with atomic_writer(path) as f:
        f.write("[")
        for i, d in enumerate(docs):
            f.write(",\n" if i else "\n")
            f.write(json.dumps(document_record(d, layout=True), ensure_ascii=False))
        f.write("\n]\n")
    return [path]


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


def _csv(docs: Iterable[Raw], out: Path) -> list[Path]:
    path = out / "results.csv"
    with atomic_writer(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for d in docs:
            rec = document_record(d)
            acc = rec["accuracy"] or {}
            rec.update({k: acc.get(k) for k in ("cer", "wer", "bow")})
            rec["review_pages"] = " ".join(map(str, rec["review_pages"]))
            w.writerow(rec)
    return [path]


def _txt(docs: Iterable[Raw], out: Path) -> list[Path]:
    # text/<input tree>/<file name>.txt: the full file name is kept (scan.png.txt) so that
    # scan.png and scan.pdf in one folder never overwrite each other's text.
    root = out / "text"
    n = 0
    for d in docs:
        if d["status"] != "completed":
            continue
        rec = document_record(d)
        path = document_path(root, rec["rel_path"], ".txt")
        with atomic_writer(path) as f:
            f.write(rec["text"])
        n += 1
    return [root] if n else []


def _pdf(docs: Iterable[Raw], out: Path) -> list[Path]:
    # pikepdf loads only when a PDF is written: the CLI starts faster without it.
    from .pdf import export_pdf

    return export_pdf(docs, out)


EXPORTERS: dict[str, Callable[[Iterable[Raw], Path], list[Path]]] = {
    "jsonl": _jsonl,
    "csv": _csv,
    "json": _json,
    "txt": _txt,
    "hocr": export_hocr,
    "alto": export_alto,
    "pdf": _pdf,
}


def export_all(formats: Iterable[str], docs: Callable[[], Iterable[Raw]], out: Path) -> list[Path]:
    """Write each format from a fresh pass over the documents (``docs()`` streams them)."""
    written: list[Path] = []
    for fmt in formats:
        written += EXPORTERS[fmt](docs(), out)
    return written


def remove_stale_temp_outputs(out: Path) -> int:
    """Remove the temp files that killed writers left where the exporters write: in
    ``out`` itself and anywhere in its per-document folders (not in other folders a
    person keeps there). Returns how many were removed."""
    n = remove_stale_temp_files(out, recursive=False)
    for folder in ("text", "hocr", "alto", "pdf"):
        if (out / folder).is_dir():
            n += remove_stale_temp_files(out / folder)
    return n
