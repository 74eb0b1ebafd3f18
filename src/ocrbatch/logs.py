"""Logging: structlog lines on stderr, as key=value text or JSON lines.

Progress goes through a Reporter (progress.py); these are the events (a page failed, a
job was requeued, paused, finished), for people and for log collectors.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure_logging"]


class _Stderr:
    """The process's stderr as it is at each write (a test runner or a caller may swap
    sys.stderr after logging was configured; the logs must follow, not write to a
    stream closed since)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(json_logs: bool = False, *, level: str = "info") -> None:
    """structlog to stderr: key=value lines, or JSON lines with ``json_logs``; events
    below ``level`` (debug, info, warning, error) are left out."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
