"""Shared fixtures: the dev corpus (skips cleanly without it), job stores, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Ray (distributed-mode tests): no usage stats, and every process on the loopback address
# (Ray reads these when it is imported).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
CORPUS = Path(os.environ.get("OCRBATCH_CORPUS", REPO.parent / "shared" / "corpus"))


@pytest.fixture
def corpus() -> Path:
    """../shared/corpus (or OCRBATCH_CORPUS); the test skips where it is absent."""
    if not (CORPUS / "manifest.csv").is_file():
        pytest.skip(f"dev corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


PG_URL = os.environ.get("OCRBATCH_TEST_PG_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema on the server at OCRBATCH_TEST_PG_URL (.ci/run
    starts one; ``eval "$(.ci/postgres.sh start)"`` does it by hand); skips without it."""
    if not PG_URL:
        pytest.skip("no PostgreSQL server (set OCRBATCH_TEST_PG_URL, see .ci/postgres.sh)")
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a SQLite file and on PostgreSQL (skipped without a server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return str(request.getfixturevalue("pg_url"))


def _drop_file_permission_override() -> None:
    """In the child before exec: root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH is
    held by file permissions like any user (it still reads and writes what it owns)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``ocrbatch ARGS`` in a subprocess; returns the completed process.

    ``unprivileged``: file permissions hold for it (chmod 000 stops it) even when the
    tests run as root; the test skips where that cannot be arranged.
    """

    def run(
        *args: str,
        timeout: float = 240,
        check: bool = False,
        env: dict[str, str] | None = None,
        unprivileged: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "OCRBATCH_DB": f"sqlite:///{tmp_path / 'cli.db'}", **(env or {})}
        drop = unprivileged and os.geteuid() == 0 and sys.platform == "linux"
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "ocrbatch", "--progress", "log", *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=full_env,
                cwd=tmp_path,
                check=False,
                preexec_fn=_drop_file_permission_override if drop else None,
            )
        except subprocess.SubprocessError as exc:
            if drop and not isinstance(exc, subprocess.TimeoutExpired):
                pytest.skip(f"cannot run without root's file-permission override: {exc}")
            raise
        if check and proc.returncode != 0:
            raise AssertionError(
                f"ocrbatch {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def stop_leftovers(started: list[subprocess.Popen[str]]) -> None:
    """Kill what is still running of processes a test started in their own process group
    (a coordinator and its pool), read their pipes to the end, and forget them: a failing
    test must not leave them running."""
    import contextlib
    import signal

    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    started.clear()


def wait_until(check: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds (no fixed sleeps:
    a loaded machine only makes the test slower, never wrong)."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(0.02)


def holds_for(check: Callable[[], bool], seconds: float, what: str = "condition") -> None:
    """``check`` stays true, checked all along ``seconds`` (e.g. nothing moves while a
    job is paused)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert check(), f"{what} stopped holding"
        time.sleep(0.02)


class S3Server:
    """A real S3 API on 127.0.0.1 (moto's server, see tests/s3server.py): its endpoint,
    the options and environment a job needs to reach it, and helpers to fill it."""

    ACCESS_KEY = "testing"

    def __init__(self, port: int) -> None:
        self.endpoint = f"http://127.0.0.1:{port}"
        # The standard credential chain (environment variables), as a user sets it.
        self.env = {
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": "testing-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    @property
    def options(self) -> list[str]:
        """The command line's storage options (the real client code path)."""
        return ["--storage-option", f"endpoint_url={self.endpoint}"]

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(
            endpoint_url=self.endpoint,
            key=self.env["AWS_ACCESS_KEY_ID"],
            secret=self.env["AWS_SECRET_ACCESS_KEY"],
            skip_instance_cache=True,
        )

    def bucket(self, name: str) -> str:
        fs = self.fs()
        if not fs.exists(name):
            fs.mkdir(name)
        return f"s3://{name}"

    def put_tree(self, folder: Path, url: str) -> list[str]:
        """Upload every file below ``folder`` to ``url``; returns their keys' URLs."""
        fs = self.fs()
        urls = []
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            dest = f"{url.rstrip('/')}/{f.relative_to(folder).as_posix()}"
            fs.put_file(str(f), dest)
            urls.append(dest)
        return urls

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Set (with ``settings``) or read the injected faults (see tests/s3server.py)."""
        import json
        import urllib.request

        data = json.dumps(settings).encode() if settings else None
        req = urllib.request.Request(f"{self.endpoint}/_faults", data=data)  # noqa: S310
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our own server
            result: dict[str, Any] = json.loads(resp.read())
        return result


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A fresh S3 server on a free port of 127.0.0.1 (moto in server mode, in its own
    process: the real S3 client code path, endpoint_url), stopped after the test. The
    credentials it accepts are in this process's environment (and so the CLI's)."""
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.s3server", "--access-key", S3Server.ACCESS_KEY],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ready PORT" once it serves (port 0: a free one)
        if not line.startswith("ready "):
            raise AssertionError(f"the S3 server did not start: {line!r}")
        server = S3Server(int(line.split()[1]))
        for k, v in server.env.items():
            monkeypatch.setenv(k, v)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
