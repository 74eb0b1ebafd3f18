"""Hostile inputs at export (issue 10): file names near the 255-byte limit, encrypted
PDFs, characters XML forbids, spreadsheet formulas, temp files of a killed writer.
The fake engine and --preprocess off keep each test to a few seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from ocrbatch.exporters import remove_stale_temp_files, temp_prefix
from ocrbatch.exporters.atomic import atomic_writer
from tests.badfiles import good_png

Cli = Callable[..., CompletedProcess[str]]
FAKE = ("--engine", "fake", "--preprocess", "off", "--mode", "sequential", "--max-retries", "0")


def _records(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["rel_path"]: r for r in map(json.loads, lines)}


def _errors(out: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (out / "errors.jsonl").read_text().splitlines()]


def _ok(proc: CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def _nbytes(name: str) -> int:
    return len(name.encode())


# -- row 14: temp files of a killed writer ------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temp_files_of_dead_writers_are_removed_by_the_next_export(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good_png(src / "a.png")
    out = tmp_path / "out"
    _ok(cli("run", str(src), "--out", str(out), "--format", "txt", *FAKE))
    host = temp_prefix().split("-")[2]
    dead, live = _dead_pid(), os.getpid()
    stale = [
        out / f".ocrbatch-{dead}-{host}-x.tmp",
        out / "text" / f".ocrbatch-{dead}-{host}-y.tmp",  # beside a per-document file
    ]
    kept = [
        out / f".ocrbatch-{live}-{host}-x.tmp",  # a writer still at work
        out / f".ocrbatch-{dead}-{'0' * 6 if host != '0' * 6 else '1' * 6}-x.tmp",  # elsewhere
        out / ".results.jsonl.abc.tmp",  # not ours to judge
        out / "notes.tmp",
        out / "mine" / f".ocrbatch-{dead}-{host}-z.tmp",  # a folder of the user's: not ours
    ]
    (out / "mine").mkdir()
    for p in stale + kept:
        p.write_bytes(b"x" * 100)
    _ok(cli("export", "1", "--format", "txt"))
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)


def test_remove_stale_temp_files_leaves_links_and_folders(tmp_path: Path) -> None:
    host = temp_prefix().split("-")[2]
    dead = _dead_pid()
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / f".ocrbatch-{dead}-{host}-l.tmp"
    link.symlink_to(target)
    folder = tmp_path / f".ocrbatch-{dead}-{host}-d.tmp"
    folder.mkdir()
    stale = tmp_path / "sub" / f".ocrbatch-{dead}-{host}-f.tmp"
    stale.parent.mkdir()
    stale.write_text("x")
    assert remove_stale_temp_files(tmp_path) == 1
    assert not stale.exists() and link.is_symlink() and folder.is_dir()
    assert target.read_text() == "keep"


def test_atomic_temp_names_are_short_and_never_derived_from_the_target(tmp_path: Path) -> None:
    target = tmp_path / ("x" * 255)  # the longest name a file system takes
    with atomic_writer(target) as f:
        f.write("fits")
        (tmp,) = [p for p in tmp_path.iterdir() if p != target]
        assert tmp.name.startswith(f".ocrbatch-{os.getpid()}-") and tmp.name.endswith(".tmp")
        assert len(tmp.name) < 40
    assert target.read_text() == "fits"
    assert sorted(tmp_path.iterdir()) == [target]
