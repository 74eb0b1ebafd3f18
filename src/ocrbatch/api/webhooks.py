"""The webhook sender: a thread of the service that posts each queued delivery (see
store/webhooks.py) to the job's callback URL, signed, and retries a failing receiver
with exponential backoff; every attempt's outcome is recorded on the delivery.

Signature: ``X-Ocrbatch-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact body
with the webhook secret of the token that created the job (`ocrbatch token create`
prints it). A receiver checks it with ``hmac.compare_digest``; the body's
``delivery`` id lets it drop a delivery it has seen (a delivery whose success answer
was lost is sent again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading

import httpx
import structlog

from ..errors import reason
from ..store import Delivery, Store
from .settings import ServiceSettings

__all__ = ["WebhookSender", "sign"]

log = structlog.get_logger("ocrbatch.webhooks")

_MAX_BACKOFF = 300.0


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Sends due deliveries every ``interval`` seconds until stopped."""

    def __init__(self, store: Store, settings: ServiceSettings, interval: float = 0.5) -> None:
        self.store = store
        self.settings = settings
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ocrbatch-webhooks", daemon=True)
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.settings.webhook_timeout + 5)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        with httpx.Client(timeout=self.settings.webhook_timeout, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    for d in self.store.claim_deliveries():
                        if self._stop.is_set():
                            break
                        self._send(client, d)
                except Exception as exc:  # the sender must outlive a store hiccup
                    log.error("webhook_sender_error", error=reason(exc))
                self._wake.wait(self.interval)
                self._wake.clear()

    def _send(self, client: httpx.Client, d: Delivery) -> None:
        body = json.dumps({**d.payload, "delivery": d.id}, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ocrbatch-webhooks",
            "X-Ocrbatch-Event": d.event,
            "X-Ocrbatch-Delivery": str(d.id),
        }
        if d.secret:
            headers["X-Ocrbatch-Signature"] = sign(d.secret, body)
        code: int | None = None
        error: str | None = None
        try:
            r = client.post(d.url, content=body, headers=headers)
            code = r.status_code
            ok = 200 <= code < 300
            if not ok:
                error = f"HTTP {code}"
        except httpx.HTTPError as exc:
            ok, error = False, reason(exc)
        retry_in: float | None = None
        if not ok and d.attempts < self.settings.webhook_attempts:
            retry_in = min(_MAX_BACKOFF, self.settings.webhook_backoff * 2 ** (d.attempts - 1))
        self.store.record_delivery(d.id, ok=ok, status_code=code, error=error, retry_in=retry_in)
        self.sent += ok
        log.info(
            "webhook", job=d.job_id, kind=d.event, delivery=d.id, ok=ok, code=code,
            error=error, attempt=d.attempts, retry_in=retry_in,
        )  # fmt: skip
