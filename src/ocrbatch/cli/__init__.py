"""The ``ocrbatch`` command line (Typer). Errors print one line and exit non-zero.

The commands live in modules by what they do (batch, jobs, inspect, serve, watch); importing
them registers them on the app.
"""

from __future__ import annotations

from . import batch, inspect, jobs, serve, watch  # noqa: F401 - registers the commands
from .app import app, main

__all__ = ["app", "main"]
