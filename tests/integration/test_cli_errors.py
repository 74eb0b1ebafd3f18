"""A bad command line: a clear one-line message, a non-zero exit, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.conftest import DATA

Cli = Callable[..., CompletedProcess[str]]


def _one_error_line(proc: CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_nonexistent_input_root(cli: Cli, tmp_path: Path) -> None:
    proc = cli("run", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert _one_error_line(proc) == f"error: input not found: {tmp_path / 'nope'}"


def test_glob_that_matches_nothing(cli: Cli, tmp_path: Path) -> None:
    proc = cli("run", str(tmp_path / "*.tif"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no files match" in _one_error_line(proc)


def test_unwritable_out(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    proc = cli("run", str(DATA / "tesseract_test"), "--out", str(tmp_path / "afile" / "out"))
    assert proc.returncode == 3
    assert _one_error_line(proc).startswith(f"error: cannot write to output folder {tmp_path}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "error: malformed database URL 'not a url'"),
        ("nosuchdb://host/x", "error: unsupported database URL 'nosuchdb://host/x'"),
    ],
)
def test_malformed_db_url(cli: Cli, tmp_path: Path, url: str, message: str) -> None:
    proc = cli("run", str(DATA / "tesseract_test"), "--out", str(tmp_path / "o"), "--db", url)
    assert proc.returncode == 2 and _one_error_line(proc).startswith(message)


def test_bad_options(cli: Cli, tmp_path: Path) -> None:
    proc = cli("run", str(DATA), "--workers", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = cli("run", str(DATA), "--format", "docx", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "unknown format 'docx'" in _one_error_line(proc)
    proc = cli("run", str(DATA), "--model", "huge", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "invalid tesseract engine option model" in _one_error_line(proc)
    proc = cli("status", "12345")
    assert proc.returncode == 5 and "no job '12345'" in _one_error_line(proc)
    proc = cli("frobnicate")
    assert proc.returncode == 2 and "No such command" in proc.stderr
