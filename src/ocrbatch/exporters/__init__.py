"""Exporters: document records -> files. Every file is written atomically (temp file in
the same folder, fsync, rename), so a reader never sees half a results file."""

from __future__ import annotations

from .atomic import atomic_writer, remove_stale_temp_files, temp_prefix
from .formats import EXPORTERS, Exporter, export_all, remove_stale_temp_outputs
from .records import document_record, error_records
from .summary import build_summary

__all__ = [
    "EXPORTERS",
    "Exporter",
    "atomic_writer",
    "build_summary",
    "document_record",
    "error_records",
    "export_all",
    "remove_stale_temp_files",
    "remove_stale_temp_outputs",
    "temp_prefix",
]
