"""Webhooks to a local receiver: signed with the token's secret, a failing receiver
retried with backoff, nothing delivered twice after a success, every delivery on the job."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import holds_for, wait_until
from tests.service.server import Service, service

__all__ = ["service"]


class Receiver:
    """An HTTP receiver on 127.0.0.1 that answers 500 to its first ``fail`` requests."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, str], bytes]] = []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                me.requests.append((dict(self.headers), body))
                code = 500 if len(me.requests) <= me.fail else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    try:
        yield r
    finally:
        r.close()


def test_signed_deliveries_retried_until_they_succeed_and_never_twice(
    service: Service, receiver: Receiver
) -> None:
    svc = service
    folder = svc.pages("hooked", 6)
    r = svc.api.post(
        "/api/v1/jobs",
        json={"inputs": [str(folder)], "out": str(svc.root / "o2"), "options": {"engine": "fake"},
              "callback_url": receiver.url},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    svc.wait_status(job, ("completed",))

    def deliveries() -> list[dict[str, Any]]:
        return list(svc.api.get(f"/api/v1/jobs/{job}/webhooks").json())

    wait_until(lambda: deliveries() and deliveries()[0]["status"] == "delivered", 60, "delivery")
    # Two 500s, then a success: three attempts of one delivery, the same body each time.
    assert len(receiver.requests) == 3
    bodies = {b for _, b in receiver.requests}
    assert len(bodies) == 1
    headers, body = receiver.requests[-1]
    expected = "sha256=" + hmac.new(svc.secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Ocrbatch-Signature"], expected)
    payload = json.loads(body)
    assert payload["event"] == "completed" and payload["job"] == job
    assert payload["pages_done"] == 6 and headers["X-Ocrbatch-Event"] == "completed"
    [d] = deliveries()
    assert d["attempts"] == 3 and d["last_status_code"] == 200 and d["delivered_at"]
    # Delivered: never sent again.
    holds_for(lambda: len(receiver.requests) == 3, 3.0, "no delivery after success")


def test_pause_and_cancel_are_events_too(service: Service, receiver: Receiver) -> None:
    svc = service
    receiver.fail = 0
    folder = svc.pages("slow", 30)
    body = {
        "inputs": [str(folder)],
        "options": {"engine": "fake", "engine_options": {"delay": 0.3}},
        "callback_url": receiver.url,
    }
    job = svc.api.post("/api/v1/jobs", json=body).json()["job"]
    wait_until(lambda: svc.status(job)["pages_done"] >= 1, 60, "the job running")
    assert svc.api.post(f"/api/v1/jobs/{job}/pause").status_code == 200
    assert svc.api.post(f"/api/v1/jobs/{job}/cancel").status_code == 200
    wait_until(lambda: len(receiver.requests) == 2, 30, "two deliveries")
    events = [json.loads(b)["event"] for _, b in receiver.requests]
    assert events == ["paused", "cancelled"]
    assert [d["event"] for d in svc.api.get(f"/api/v1/jobs/{job}/webhooks").json()] == [
        "cancelled",
        "paused",
    ]
