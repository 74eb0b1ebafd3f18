"""Exporters: document records -> files. Every file is written atomically (temp file in
the same folder, fsync, rename), so a reader never sees half a results file; a document
whose own file cannot be written is an :class:`ExportProblem`, and the others go on."""

from __future__ import annotations

from .atomic import atomic_writer, publishing, remove_stale_temp_files, temp_prefix
from .documents import ExportOptions, ExportProblem
from .records import document_record, error_records
from .registry import (
    DOCUMENT_WRITERS,
    RECORD_FORMATS,
    ExportResult,
    export_all,
    remove_stale_temp_outputs,
)
from .results_csv import csv_cell
from .summary import build_summary

__all__ = [
    "DOCUMENT_WRITERS",
    "RECORD_FORMATS",
    "ExportOptions",
    "ExportProblem",
    "ExportResult",
    "atomic_writer",
    "build_summary",
    "csv_cell",
    "document_record",
    "error_records",
    "export_all",
    "publishing",
    "remove_stale_temp_files",
    "remove_stale_temp_outputs",
    "temp_prefix",
]
