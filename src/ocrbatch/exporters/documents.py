"""Per-document outputs (txt, hOCR, ALTO, searchable PDF): one file per completed
document, at :func:`~ocrbatch.exporters.paths.output_relpath`.

A document whose file cannot be written (its input PDF no longer opens, a name the file
system refuses...) is an :class:`ExportProblem` with a one-line reason: logged, listed in
errors.jsonl (kind ``export``) and counted in summary.json, while the other documents'
files are written. Only a full or read-only file system ends the export (every file
after would fail the same way): its OSError goes up to the service.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ..config import RunConfig
from ..errors import DocumentError, one_line
from .atomic import atomic_writer
from .paths import DOCUMENT_FORMATS, output_relpath
from .records import document_record

__all__ = [
    "FATAL_ERRNOS",
    "DocumentWriter",
    "ExportOptions",
    "ExportProblem",
    "write_documents",
    "write_txt",
]

log = structlog.get_logger("ocrbatch.export")

Raw = Mapping[str, Any]

# The output folder as a whole cannot take more files: not one document's problem.
FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What writing a document may need besides its record: the user password of
    encrypted input PDFs, the pixel cap of page images (the searchable PDF), and how an
    input in a bucket is fetched (the searchable PDF keeps its pages)."""

    password: str | None = None
    max_pixels: int = RunConfig.model_fields["max_pixels"].default
    storage_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportProblem:
    """A document's file of one format that was not written, and why (one line)."""

    path: str
    format: str
    error: str

    def record(self) -> dict[str, Any]:
        """Its line in errors.jsonl."""
        return {
            "path": self.path,
            "page": None,
            "kind": "export",
            "format": self.format,
            "error": self.error,
            "attempts": 0,
        }


DocumentWriter = Callable[[Raw, Path, ExportOptions], None]


def write_documents(
    fmt: str,
    docs: Iterable[Raw],
    out: Path,
    write: DocumentWriter,
    options: ExportOptions,
    problems: list[ExportProblem],
) -> list[Path]:
    """Write format ``fmt`` of each completed document with ``write``; a document that
    cannot be written is appended to ``problems``. Returns the format's folder if it
    wrote any file."""
    n = 0
    for d in docs:
        if d["status"] != "completed":
            continue
        dest = out / output_relpath(fmt, d["rel_path"])
        try:
            write(d, dest, options)
            n += 1
            continue
        except DocumentError as exc:
            reason = exc.message
        except OSError as exc:
            if exc.errno in FATAL_ERRNOS:
                raise  # the service's one line, and the store marks the outputs incomplete
            reason = f"cannot write {fmt} file: {exc.strerror or exc}"
        except UnicodeError:
            reason = f"cannot write {fmt} file: the file name cannot be encoded"
        problem = ExportProblem(str(d["path"]), fmt, one_line(reason))
        log.warning("export_failed", path=problem.path, format=fmt, error=problem.error)
        problems.append(problem)
    return [out / DOCUMENT_FORMATS[fmt][0]] if n else []


def write_txt(doc: Raw, dest: Path, options: ExportOptions) -> None:
    """text/<input tree>/<file name>.txt: the document's text, pages separated by \\f."""
    with atomic_writer(dest) as f:
        f.write(document_record(doc)["text"])
