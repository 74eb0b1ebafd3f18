"""The REST service (``ocrbatch serve``): a FastAPI app, a live dashboard, Prometheus
metrics and webhooks over the same job store, queue and workers as the CLI. It calls
service.py, status.py and the store's named methods; it never runs a job itself (the
embedded worker is ``ocrbatch worker`` in a child process)."""

from __future__ import annotations

from .app import create_app
from .settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
