"""A bad command line: a clear one-line message, a non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest

import ocrbatch
from tests.badfiles import good_png
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
    want = "error: --model: Input should be 'fast' or 'standard' (given: 'huge')"
    assert _one_error_line(proc) == want
    assert proc.returncode == 2
    # A store that does not exist is not created by a command that only reads it.
    proc = cli("status", "12345")
    assert proc.returncode == 5 and "error: no job store at " in _one_error_line(proc)
    assert not (tmp_path / "cli.db").exists()
    proc = cli("frobnicate")
    assert proc.returncode == 2 and "No such command" in proc.stderr


# -- hostile inputs at discovery (issue 10) --------------------------------------------

FAKE = ("--engine", "fake", "--preprocess", "off")


def _records(out: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def _errors(out: Path) -> dict[str, str]:
    lines = (out / "errors.jsonl").read_text().splitlines()
    return {str(e["path"]): str(e["error"]) for e in map(json.loads, lines)}


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/in with a.png and a subfolder no one may read (chmod 000)."""
    root = tmp_path / "in"
    (root / "locked").mkdir(parents=True)
    good_png(root / "a.png")
    good_png(root / "locked" / "b.png")
    (root / "locked").chmod(0)
    try:
        yield root
    finally:
        (root / "locked").chmod(0o755)


def test_unreadable_subfolder_is_an_entry_in_errors_jsonl(
    cli: Cli, tmp_path: Path, locked: Path
) -> None:
    out = tmp_path / "o"
    proc = cli("run", str(locked), "--out", str(out), *FAKE, unprivileged=True)
    assert proc.returncode == 8, proc.stderr  # the job ran; a document failed
    assert _errors(out) == {str(locked / "locked"): "cannot read folder: Permission denied"}
    assert [r["status"] for r in _records(out) if r["rel_path"] == "a.png"] == ["completed"]


def test_unreadable_root_is_one_error_line_and_no_job(
    cli: Cli, tmp_path: Path, locked: Path
) -> None:
    root = locked / "locked"
    proc = cli("run", str(root), "--out", str(tmp_path / "o"), *FAKE, unprivileged=True)
    assert proc.returncode == 2
    assert _one_error_line(proc) == f"error: cannot read input folder {root}: Permission denied"
    assert ocrbatch.list_jobs(db=f"sqlite:///{tmp_path / 'cli.db'}") == []


@pytest.mark.timeout(120)
def test_fifo_and_device_in_the_tree_fail_alone_and_never_hang(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    good_png(root / "a.png")
    os.mkfifo(root / "pipe.png")
    (root / "zero.png").symlink_to("/dev/zero")
    out = tmp_path / "o"
    proc = cli("run", str(root), "--out", str(out), *FAKE, timeout=60)
    assert proc.returncode == 8, proc.stderr  # the job ran; two documents failed
    assert _errors(out) == {
        str(root / "pipe.png"): "not a regular file (FIFO)",
        str(root / "zero.png"): "not a regular file (character device)",
    }
    # resume and a second run do not hang either
    again = cli("run", str(root), "--out", str(out), *FAKE, timeout=60)
    assert again.returncode == 8, again.stderr


def test_same_base_names_each_get_their_own_output(cli: Cli, tmp_path: Path) -> None:
    for p in ("p1/doc.png", "p2/doc.png", "r1/data/x.png", "r2/data/x.png"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        good_png(tmp_path / p, text=p)
    (tmp_path / "list.txt").write_text("p1/doc.png\np2/doc.png\n")
    for inputs, expected in [
        (["p1/doc.png", "p2/doc.png"], ["p1/doc.png.txt", "p2/doc.png.txt"]),
        (["r1/data", "r2/data"], ["r1/data/x.png.txt", "r2/data/x.png.txt"]),
        (["@list.txt"], ["p1/doc.png.txt", "p2/doc.png.txt"]),
    ]:
        out = tmp_path / f"o-{len(list(tmp_path.glob('o-*')))}"
        proc = cli("run", *inputs, "--out", str(out), "--format", "jsonl,txt", *FAKE)
        assert proc.returncode == 0, proc.stderr
        texts = sorted(str(p.relative_to(out / "text")) for p in (out / "text").rglob("*.txt"))
        assert texts == expected


def test_out_inside_the_input_root_is_never_an_input(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    good_png(root / "a.png")
    out = root / "results"
    for _ in range(3):
        proc = cli("run", str(root), "--out", str(out), "--format", "jsonl,txt,pdf", *FAKE)
        assert proc.returncode == 0, proc.stderr
        assert [r["path"] for r in _records(out)] == [str(root / "a.png")]
    assert sorted(p.name for p in out.rglob("*.pdf")) == ["a.png.pdf"]
    proc = cli("run", str(out / "pdf"), "--out", str(out), *FAKE)
    assert proc.returncode == 2
    assert _one_error_line(proc) == (
        f"error: input {out / 'pdf'} is in the output folder {out}: "
        "ocrbatch never reads its own files"
    )
