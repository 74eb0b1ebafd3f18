"""The embedded queue worker of ``ocrbatch serve``: ``ocrbatch worker`` (service.work,
the one queue loop) in a child process of the server, so that the server's requests
and the coordinator's loop never share one interpreter lock. It dies with the server
(Linux: a parent-death signal) and stops cleanly with it (SIGTERM: its pages in
flight go back to the queue)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import structlog

from ..executors import default_workers
from .settings import ServiceSettings

__all__ = ["EmbeddedWorker"]

log = structlog.get_logger("ocrbatch.serve")


def _die_with_parent() -> None:  # in the child, before exec
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedWorker:
    """One ``ocrbatch worker`` child on the service's store and queue."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.slots = settings.workers or default_workers(200)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def owner(self) -> str | None:
        """The child's coordinator id (host:pid), as the store records it."""
        import socket

        return f"{socket.gethostname()}:{self.proc.pid}" if self.proc else None

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "ocrbatch", "--progress", "none", "worker",
            "--queue", self.settings.queue, "--workers", str(self.slots),
            "--db", self.settings.db,
        ]  # fmt: skip
        # Started first thing in the lifespan, before the service starts any thread.
        self.proc = subprocess.Popen(cmd, preexec_fn=_die_with_parent, env=os.environ.copy())  # noqa: PLW1509
        log.info("embedded_worker_started", pid=self.proc.pid, workers=self.slots)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
