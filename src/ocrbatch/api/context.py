"""What the service holds while it runs: one store (one connection pool for every
request), the confinement, short caches of token lookups and job figures, the embedded
worker and the webhook sender."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import Request

from ..model import JobStatus
from ..status import find_job, open_store, status_dict
from ..store import JobInfo, Store, TokenInfo, hash_token
from .confine import Confinement
from .settings import ServiceSettings

__all__ = ["ENDED", "ServiceContext", "context"]

ENDED = (str(JobStatus.COMPLETED), str(JobStatus.FAILED), str(JobStatus.CANCELLED))
# Job figures change once a second in the store (record_progress): a poll read within
# this is served from memory, so many pollers cost the store one read.
STATUS_TTL = 0.5


class ServiceContext:
    """The service's state, shared by every request (``app.state.ctx``)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        settings.inbox.mkdir(parents=True, exist_ok=True)
        settings.results.mkdir(parents=True, exist_ok=True)
        self.store: Store = open_store(settings.db)
        self.confine = Confinement(settings.roots())
        self.stopping = threading.Event()
        self._tokens: dict[str, tuple[float, TokenInfo | None]] = {}
        self._status: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.worker: Any = None  # api.embedded.EmbeddedWorker when one runs here
        self.sender: Any = None  # api.webhooks.WebhookSender

    def token(self, raw: str) -> TokenInfo | None:
        """The live token ``raw`` is (cached for ``token_cache_seconds``)."""
        key = hash_token(raw)
        now = time.monotonic()
        hit = self._tokens.get(key)
        if hit is not None and now - hit[0] < self.settings.token_cache_seconds:
            return hit[1]
        info = self.store.token_by_hash(key)
        with self._lock:
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[key] = (now, info)
        return info

    def job(self, ref: int | str) -> JobInfo:
        return find_job(self.store, ref)

    def status(self, ref: int | str, *, fresh: bool = False) -> dict[str, Any]:
        """A job's figures as `ocrbatch status --json` shows them, plus accuracy and
        review from its summary when it has them; cached for STATUS_TTL."""
        key = str(ref)
        now = time.monotonic()
        hit = self._status.get(key)
        if not fresh and hit is not None and now - hit[0] < STATUS_TTL:
            return hit[1]
        info = self.job(ref)
        d = self.describe(info)
        with self._lock:
            if len(self._status) > 10_000:
                self._status.clear()
            self._status[key] = (now, d)
        return d

    def describe(self, info: JobInfo) -> dict[str, Any]:
        d = status_dict(info)
        summary = info.summary or {}
        d["accuracy"] = summary.get("accuracy")
        d["review"] = summary.get("review")
        d["engine"] = (info.ocr_config or {}).get("engine")
        d["min_confidence"] = (info.ocr_config or {}).get("min_confidence")
        return d

    def forget(self) -> None:
        """Drop the cached figures (after a change asked through the API)."""
        with self._lock:
            self._status.clear()

    def close(self) -> None:
        self.stopping.set()
        self.store.close()


def context(request: Request) -> ServiceContext:
    """A dependency: the service's state."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx
