"""The OpenAPI schema fuzzed with schemathesis against a real server: no input, with a
write token, gets a 5xx."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.server import Service, service

__all__ = ["service"]


@pytest.mark.slow
def test_no_input_gets_a_server_error(service: Service, tmp_path: Path) -> None:
    st = shutil.which("st", path=os.path.dirname(sys.executable))
    if st is None:
        pytest.skip("schemathesis (st) is not installed")
    svc = service
    svc.pages("fuzz", 2)
    proc = subprocess.run(
        [
            st,
            "run",
            f"{svc.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {svc.write}",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--request-timeout",
            "30",
            # A stream that lasts while its job runs; fuzzed ids are 404 within it anyway.
            "--exclude-path",
            "/api/v1/jobs/{job}/events",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
