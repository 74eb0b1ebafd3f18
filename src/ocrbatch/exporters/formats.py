"""The result formats: jsonl, csv, json (one file each, a record per document), txt (one
text file per document), and the layout formats hOCR, ALTO and searchable PDF (one file
per document, see their modules)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from .atomic import atomic_writer, remove_stale_temp_files
from .documents import DocumentWriter, ExportOptions, ExportProblem, write_documents, write_txt
from .layout_xml import write_alto, write_hocr
from .paths import DOCUMENT_FORMATS, output_relpath, safe_relpath
from .records import document_record

__all__ = [
    "CSV_FIELDS",
    "DOCUMENT_WRITERS",
    "RECORD_FORMATS",
    "ExportResult",
    "RecordExporter",
    "csv_cell",
    "export_all",
    "remove_stale_temp_outputs",
    "safe_relpath",
]

Raw = Mapping[str, Any]
Outputs = Callable[[Raw], dict[str, str]]


class RecordExporter(Protocol):
    """Writes one file with a record per document into ``out``; returns its path.
    ``outputs(doc)`` says where the document's per-document files went."""

    def __call__(self, docs: Iterable[Raw], out: Path, outputs: Outputs) -> Path: ...


def _jsonl(docs: Iterable[Raw], out: Path, outputs: Outputs) -> Path:
    path = out / "results.jsonl"
    with atomic_writer(path) as f:
        for d in docs:
            rec = document_record(d)
            rec["outputs"] = outputs(d)
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def _json(docs: Iterable[Raw], out: Path, outputs: Outputs) -> Path:
    # Streamed: one record at a time, never the whole list in memory.
    path = out / "results.json"
    with atomic_writer(path) as f:
        f.write("[")
        for i, d in enumerate(docs):
            rec = document_record(d, layout=True)
            rec["outputs"] = outputs(d)
            f.write(",\n" if i else "\n")
            f.write(json.dumps(rec, ensure_ascii=False))
        f.write("\n]\n")
    return path


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


def _csv(docs: Iterable[Raw], out: Path, outputs: Outputs) -> Path:
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


def _pdf(doc: Raw, dest: Path, options: ExportOptions) -> None:
    # pikepdf loads only when a PDF is written: the CLI starts faster without it.
    from .pdf import write_pdf

    write_pdf(doc, dest, options)


RECORD_FORMATS: dict[str, RecordExporter] = {"jsonl": _jsonl, "csv": _csv, "json": _json}
DOCUMENT_WRITERS: dict[str, DocumentWriter] = {
    "txt": write_txt,
    "hocr": write_hocr,
    "alto": write_alto,
    "pdf": _pdf,
}


@dataclass
class ExportResult:
    """What :func:`export_all` wrote, and the documents' files it could not write."""

    written: list[Path] = field(default_factory=list)
    problems: list[ExportProblem] = field(default_factory=list)


def export_all(
    formats: Iterable[str],
    docs: Callable[[], Iterable[Raw]],
    out: Path,
    options: ExportOptions | None = None,
    *,
    each: Callable[[], Iterable[Raw]] | None = None,
) -> ExportResult:
    """Write each format from a fresh pass over the documents (``docs()`` streams them).

    The per-document formats go first, so that each record (results.jsonl, .json) says in
    ``outputs`` (format -> path relative to ``out``) where its files went, leaving out
    those that could not be written. ``each``: the documents whose own files are written
    (default: all of ``docs()``; a standing job writes its new ones only).
    """
    options = options or ExportOptions()
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in RECORD_FORMATS and f not in DOCUMENT_WRITERS]
    if unknown:
        raise ConfigError(f"unknown format {unknown[0]!r}")
    per_doc = [f for f in formats if f in DOCUMENT_WRITERS]
    result = ExportResult()
    for fmt in per_doc:
        result.written += write_documents(
            fmt, (each or docs)(), out, DOCUMENT_WRITERS[fmt], options, result.problems
        )
    failed = {(p.path, p.format) for p in result.problems}

    def outputs(d: Raw) -> dict[str, str]:
        if d["status"] != "completed":
            return {}
        path = str(d["path"])
        return {
            f: str(output_relpath(f, d["rel_path"])) for f in per_doc if (path, f) not in failed
        }

    for fmt in formats:
        if fmt in RECORD_FORMATS:
            result.written.append(RECORD_FORMATS[fmt](docs(), out, outputs))
    return result


def remove_stale_temp_outputs(out: Path) -> int:
    """Remove the temp files that killed writers left where the exporters write: in
    ``out`` itself and anywhere in its per-document folders (not in other folders a
    person keeps there). Returns how many were removed."""
    n = remove_stale_temp_files(out, recursive=False)
    for folder, _suffix in DOCUMENT_FORMATS.values():
        if (out / folder).is_dir():
            n += remove_stale_temp_files(out / folder)
    return n
