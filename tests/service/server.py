"""A real `ocrbatch serve` on 127.0.0.1 for the service tests: its own store, state
folder and allowed root, a write and a read token; stopped (SIGTERM, then SIGKILL) by
the fixture even when the test fails."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the service extra")

from ocrbatch.store import Store
from tests.badfiles import good_png
from tests.conftest import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """A running server and what a test needs to talk to it."""

    url: str
    db: str
    root: Path  # the allowed root (inputs and outputs)
    state: Path
    write: str  # tokens
    read: str
    secret: str  # the webhook secret of the write token
    proc: subprocess.Popen[str]
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)
        self.clients.append(c)
        return c

    @property
    def api(self) -> httpx.Client:
        return self.client(self.write)

    def status(self, job: int) -> dict[str, Any]:
        r = self.api.get(f"/api/v1/jobs/{job}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_status(
        self, job: int, statuses: tuple[str, ...], timeout: float = 120
    ) -> dict[str, Any]:
        wait_until(lambda: self.status(job)["status"] in statuses, timeout, f"job {job} {statuses}")
        return self.status(job)

    def pages(self, folder: str, n: int, text: str = "page") -> Path:
        d = self.root / folder
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            good_png(d / f"p{i:03}.png", text=f"{text} {i}")
        return d


def start_service(tmp: Path, *args: str, workers: int | None = 2) -> Service:
    root = tmp / "data"
    root.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{tmp / 'service.db'}"
    with Store(db) as st:
        write, info = st.create_token("writer", "write")
        read, _ = st.create_token("reader", "read")
    port = free_port()
    log = tmp / "serve.log"
    extra = ["--workers", str(workers)] if workers else ["--no-workers"]
    cmd = [
        sys.executable, "-m", "ocrbatch", "--progress", "none", "serve", "--port", str(port),
        "--db", db, "--allow-root", str(root), "--state-dir", str(tmp / "state"), *extra, *args,
    ]  # fmt: skip
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, cwd=tmp)
    svc = Service(
        f"http://127.0.0.1:{port}", db, root, tmp / "state", write, read,
        info.webhook_secret, proc, log,
    )  # fmt: skip

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"ocrbatch serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{svc.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 60, "the server answering /healthz")
    except BaseException:
        stop_service(svc)
        raise
    return svc


def stop_service(svc: Service) -> None:
    for c in svc.clients:
        c.close()
    p = svc.proc
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = start_service(tmp_path)
    try:
        yield svc
    finally:
        stop_service(svc)


def fake_job(svc: Service, folder: Path, **options: Any) -> dict[str, Any]:
    """Submit a fake-engine job over the API; returns its figures."""
    body = {
        "inputs": [str(folder)],
        "out": str(svc.root / f"out-{folder.name}"),
        "options": {"engine": "fake", "preprocess": "off", **options},
    }
    r = svc.api.post("/api/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())
