"""Crash safety with real Tesseract and a real SQLite file: kill -9 and Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import ocrbatch
from ocrbatch.store import Store
from tests.conftest import DATA, stop_leftovers

PAGES = 14
# A dense page (about 1.5-2 s of OCR here), so that the job is still running when the test
# pauses or kills it, even on a loaded machine.
PAGE = DATA / "docbank" / "arxiv_1401_6921_p13.jpg"


def _inputs(folder: Path) -> Path:
    folder.mkdir()
    for i in range(PAGES):  # distinct files: copies of a small real scan
        shutil.copy(PAGE, folder / f"page {i:02d}{PAGE.suffix}")
    return folder


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """A failing test must not leave its coordinator (and pool) running."""
    yield
    stop_leftovers(_started)


_started: list[subprocess.Popen[str]] = []


def _start(args: list[str], db: str, cwd: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocrbatch", "--progress", "log", *args, "--db", db],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )
    _started.append(proc)
    return proc


def _wait_for_progress(db: str, name: str, at_least: int, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            st = Store(db)
            try:
                done = st.get_job(name).processed_pages
            finally:
                st.close()
            if done >= at_least:
                return done
        except Exception:  # noqa: S110 - the job row may not exist yet
            pass
        time.sleep(0.05)
    raise AssertionError("no progress")


def _check_exactly_once(db: str, name: str, out: Path) -> None:
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    paths = [r["path"] for r in recs]
    assert len(paths) == len(set(paths)) == PAGES
    assert all(r["status"] == "completed" and len(r["text"]) > 1000 for r in recs)
    st = Store(db)
    try:
        job = st.get_job(name)
        docs = list(st.iter_documents(job.id))
    finally:
        st.close()
    assert len(docs) == PAGES and all(len(d["pages"]) == 1 for d in docs)
    assert (job.status, job.processed_pages, job.successful_documents) == (
        "completed",
        PAGES,
        PAGES,
    )


def _completed_before(db: str, name: str) -> dict[int, tuple[str, str]]:
    st = Store(db)
    try:
        job = st.get_job(name)
        return {
            p["id"]: (p["worker_id"], str(p["completed_at"]))
            for d in st.iter_documents(job.id)
            for p in d["pages"]
            if p["status"] == "completed"
        }
    finally:
        st.close()


@pytest.mark.slow
def test_kill_9_of_the_coordinator_then_resume_records_every_document_once(tmp_path: Path) -> None:
    src, out, db = _inputs(tmp_path / "in"), tmp_path / "out", f"sqlite:///{tmp_path / 'j.db'}"
    proc = _start(
        ["run", str(src), "--out", str(out), "--name", "k9", "--workers", "2"], db, tmp_path
    )
    _wait_for_progress(db, "k9", 3, proc)
    family = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    before = _completed_before(db, "k9")
    assert 3 <= len(before) < PAGES
    # The orphaned pool does not outlive its coordinator for long.
    _gone, alive = psutil.wait_procs(family, timeout=20)
    assert not alive, [p.cmdline() for p in alive]
    status = subprocess.run(
        [sys.executable, "-m", "ocrbatch", "status", "k9", "--db", db, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout)["status"] == "interrupted"
    resumed = subprocess.run(
        [sys.executable, "-m", "ocrbatch", "--progress", "log", "resume", "k9", "--db", db],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    _check_exactly_once(db, "k9", out)
    after = _completed_before(db, "k9")
    assert {k: after[k] for k in before} == before  # finished pages were not redone


@pytest.mark.slow
def test_ctrl_c_pauses_and_resume_completes(tmp_path: Path) -> None:
    src, out, db = _inputs(tmp_path / "in"), tmp_path / "out", f"sqlite:///{tmp_path / 'j.db'}"
    proc = _start(
        ["run", str(src), "--out", str(out), "--name", "sigint", "--workers", "2"], db, tmp_path
    )
    _wait_for_progress(db, "sigint", 2, proc)
    # Another process sees the live figures from the store.
    live = ocrbatch.job_status("sigint", db=db)
    assert live["status"] == "running" and live["owner"].endswith(f":{proc.pid}")
    assert live["pages_total"] == PAGES and live["pages_done"] >= 2
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "paused: continue with `ocrbatch resume" in err
    st = Store(db)
    try:
        job = st.get_job("sigint")
        assert job.status == "paused" and job.owner is None
        assert st.unfinished_tasks(job.id) == PAGES - job.processed_pages > 0
        running = [
            p for d in st.iter_documents(job.id) for p in d["pages"] if p["status"] == "running"
        ]
        assert running == []  # in-flight pages went back to pending
    finally:
        st.close()
    resumed = subprocess.run(
        [sys.executable, "-m", "ocrbatch", "--progress", "log", "resume", "sigint", "--db", db],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    _check_exactly_once(db, "sigint", out)
