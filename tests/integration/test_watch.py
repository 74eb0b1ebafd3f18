"""`ocrbatch watch` on a local folder: files dropped while it runs are each processed
once, a file still being written is not read before it settles, and a restart takes in
what arrived while it was down (the store records what was seen)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocrbatch.store import Store
from tests.badfiles import good_png
from tests.conftest import holds_for, stop_leftovers, wait_until

pytestmark = pytest.mark.slow

_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """A failing test must not leave its watcher (and pool) running."""
    yield
    stop_leftovers(_started)


class Watcher:
    """`ocrbatch watch SRC --out OUT` in a process group of its own."""

    def __init__(self, tmp: Path, settle: float) -> None:
        self.src, self.out, self.tmp = tmp / "inbox", tmp / "ocr", tmp
        self.src.mkdir(exist_ok=True)
        self.db = f"sqlite:///{tmp / 'jobs.db'}"
        self.settle = settle
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        args = ["watch", str(self.src), "--out", str(self.out), "--settle", str(self.settle)]
        args += ["--engine", "fake", "--format", "jsonl,txt", "-j", "2", "--db", self.db]
        env = {
            **os.environ,
            "OCRBATCH_CACHE": str(self.tmp / "page-cache"),
            "OCRBATCH_OBJECT_CACHE": str(self.tmp / "object-cache"),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ocrbatch", "--progress", "log", *args],
            cwd=self.tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        _started.append(self.proc)
        wait_until(lambda: self.job() is not None and self.job()["status"] == "running", 120)

    def stop(self, sig: int = signal.SIGINT) -> subprocess.CompletedProcess[str]:
        assert self.proc is not None
        if sig == signal.SIGKILL:
            os.killpg(self.proc.pid, sig)  # the watcher and its pool
        else:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=120)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def job(self) -> dict[str, Any] | None:
        with contextlib.suppress(Exception), Store(self.db) as st:
            jobs = st.standing_jobs()
            if jobs:
                return {"id": jobs[0].id, "status": jobs[0].status}
        return None

    def documents(self) -> list[dict[str, Any]]:
        job = self.job()
        if job is None:
            return []
        with Store(self.db) as st:
            return list(st.iter_documents(job["id"]))

    def done(self, n: int) -> bool:
        """``n`` documents taken in and completed, their text files written."""
        assert self.alive(), self.proc and self.proc.communicate()
        docs = self.documents()
        return (
            len(docs) == n
            and all(d["status"] == "completed" for d in docs)
            and all((self.out / "text" / f"{d['rel_path']}.txt").is_file() for d in docs)
        )


def _drop(w: Watcher, name: str) -> None:
    """A file arrives whole (written beside, then renamed in), as most tools deliver."""
    tmp = w.tmp / f".partial-{name.replace('/', '-')}"
    good_png(tmp, text=name)
    os.replace(tmp, w.src / name)


def _results(w: Watcher) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (w.out / "results.jsonl").read_text().splitlines()]


def test_files_dropped_while_it_watches_are_each_processed_once(tmp_path: Path) -> None:
    w = Watcher(tmp_path, settle=0.5)
    _drop(w, "before.png")  # there already when it starts
    w.start()
    for i in range(4):
        _drop(w, f"a{i}.png")
    wait_until(lambda: w.done(5), 120, "five documents")
    (w.src / "sub").mkdir()
    for i in range(3):
        _drop(w, f"sub/b{i}.png")
    wait_until(lambda: w.done(8), 120, "eight documents")
    holds_for(lambda: len(w.documents()) == 8, 1.5, "no document taken twice")
    stopped = w.stop(signal.SIGINT)
    assert stopped.returncode == 0, stopped.stderr
    assert "the same command continues" in stopped.stderr
    recs = _results(w)
    assert sorted(r["rel_path"] for r in recs) == sorted(
        ["before.png", *(f"a{i}.png" for i in range(4)), *(f"sub/b{i}.png" for i in range(3))]
    )
    assert all(r["status"] == "completed" and r["pages"] == 1 for r in recs)
    assert (w.out / "text" / "sub" / "b2.png.txt").read_text() == "fake text of b2.png page 1"
    status = subprocess.run(
        [sys.executable, "-m", "ocrbatch", "status", "--db", w.db, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    shown = json.loads(status.stdout)
    assert shown["watch"]["source"] == str(w.src) and shown["status"] == "paused"


def test_a_file_still_being_written_is_not_read_before_it_settles(tmp_path: Path) -> None:
    # A scanner writing a page bit by bit, a second between writes: the watcher lists the
    # folder several times between two writes (every settle/2, and its loop's turn), so
    # only the settle time keeps it from taking the file half written.
    w = Watcher(tmp_path, settle=2.5)
    w.start()
    whole = tmp_path / "whole.png"
    good_png(whole, text="slowly written")
    data = whole.read_bytes()
    step = -(-len(data) // 6)
    with open(w.src / "slow.png", "wb") as f:
        for i in range(0, len(data), step):
            f.write(data[i : i + step])
            f.flush()
            holds_for(lambda: not w.documents(), 1.0, "nothing read while it is written")
    wait_until(lambda: w.done(1), 60, "the file, once settled")
    doc = w.documents()[0]
    assert doc["file_size"] == len(data) and doc["status"] == "completed"
    assert w.stop().returncode == 0
    assert (w.out / "errors.jsonl").read_text() == ""


def test_a_restart_takes_in_the_files_that_arrived_while_it_was_down(tmp_path: Path) -> None:
    w = Watcher(tmp_path, settle=0.3)
    w.start()
    _drop(w, "one.png")
    _drop(w, "two.png")
    wait_until(lambda: w.done(2), 120, "two documents")
    with Store(w.db) as st:
        job = st.standing_jobs()[0]
        before = {p["id"]: p["completed_at"] for d in st.iter_documents(job.id) for p in d["pages"]}
    w.stop(signal.SIGKILL)  # a crash: the store is all it leaves
    for name in ("three.png", "four.png", "five.png"):
        _drop(w, name)
    w.start()
    wait_until(lambda: w.done(5), 120, "five documents")
    assert w.stop().returncode == 0
    recs = _results(w)
    assert sorted(r["rel_path"] for r in recs) == sorted(
        ["one.png", "two.png", "three.png", "four.png", "five.png"]
    )
    with Store(w.db) as st:
        assert [j.id for j in st.standing_jobs()] == [job.id]  # the same job, continued
        after = {p["id"]: p["completed_at"] for d in st.iter_documents(job.id) for p in d["pages"]}
    assert {k: after[k] for k in before} == before  # nothing redone
