"""`--ray-address ray://host:port`: a job through Ray Client to a head started with
`ray start`, with Ray's token authentication on, as a cluster users already run."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA

pytest.importorskip("ray")
pytest.importorskip("grpc")  # Ray Client (the `ray` extra installs ray[client])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip("the ray command is not installed beside this Python")
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    port, client_port = _free_port(), _free_port()
    temp = tmp_path_factory.mktemp("ray")
    # --block: the head's processes live and die with this one, so the teardown stops only
    # this cluster (`ray stop` would stop every Ray on the machine).
    proc = subprocess.Popen(
        [
            str(ray_cli),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            f"--ray-client-server-port={client_port}",
            "--include-dashboard=false",
            "--num-cpus=2",
            f"--temp-dir={temp}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", client_port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Ray head did not start")
            time.sleep(0.5)
        yield f"ray://127.0.0.1:{client_port}", env
    finally:
        # `ray start --block` stops its processes on SIGINT (Ctrl-C), as a user would.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_a_job_runs_through_ray_client_with_token_auth(
    head: tuple[str, dict[str, str]],
    cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    address, env = head
    out = tmp_path / "out"
    proc = cli(
        "run",
        str(DATA / "tesseract_test"),
        "--out",
        str(out),
        "--mode",
        "distributed",
        "--ray-address",
        address,
        "--workers",
        "2",
        env=env,
        check=True,
    )
    assert "completed" in proc.stdout
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    inputs = sorted(p.name for p in (DATA / "tesseract_test").iterdir() if p.suffix != ".txt")
    assert sorted(Path(r["path"]).name for r in rows) == inputs
    assert all(r["status"] == "completed" and r["text"].strip() for r in rows)


def test_a_wrong_token_is_a_clear_error(
    head: tuple[str, dict[str, str]],
    cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    address, env = head
    proc = cli(
        "run",
        str(DATA / "tesseract_test"),
        "--out",
        str(tmp_path / "out"),
        "--mode",
        "distributed",
        "--ray-address",
        address,
        env={**env, "RAY_AUTH_TOKEN": "0" * 64},
        timeout=180,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"cannot start or reach {address}" in proc.stderr
