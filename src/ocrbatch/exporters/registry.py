"""The result formats behind one registry: the record formats (one file each, a record
per document: results_jsonl, results_csv, results_json) and the per-document formats
(a file per document: txt in documents, hOCR and ALTO in layout_xml, the searchable PDF
in pdf); :func:`export_all` writes a job's formats through it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .atomic import remove_stale_temp_files
from .documents import DocumentWriter, ExportOptions, ExportProblem, write_documents, write_txt
from .layout_xml import write_alto, write_hocr
from .paths import DOCUMENT_FORMATS, output_relpath
from .records import Raw, RecordExporter
from .results_csv import write_csv
from .results_json import write_json
from .results_jsonl import write_jsonl

__all__ = [
    "DOCUMENT_WRITERS",
    "RECORD_FORMATS",
    "ExportResult",
    "export_all",
    "remove_stale_temp_outputs",
]


def _pdf(doc: Raw, dest: Path, options: ExportOptions) -> None:
    # pikepdf loads only when a PDF is written: the CLI starts faster without it.
    from .pdf import write_pdf

    write_pdf(doc, dest, options)


RECORD_FORMATS: dict[str, RecordExporter] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "json": write_json,
}
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
