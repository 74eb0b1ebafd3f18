"""Shared fixtures: the dev corpus (skips cleanly without it), job stores, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

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


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``ocrbatch ARGS`` in a subprocess; returns the completed process."""

    def run(
        *args: str, timeout: float = 240, check: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "OCRBATCH_DB": f"sqlite:///{tmp_path / 'cli.db'}", **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "ocrbatch", "--progress", "log", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=tmp_path,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"ocrbatch {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run
