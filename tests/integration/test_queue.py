"""The job queue: `ocrbatch submit`, and `ocrbatch worker` coordinators in their own
processes on one store (PostgreSQL, and SQLite on one machine), with the fake engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ocrbatch
from ocrbatch.share import Demand, share
from ocrbatch.store import Store
from tests.badfiles import good_png
from tests.conftest import holds_for, wait_until


def _inputs(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        good_png(folder / f"p{i:02}.png", text=str(i))
    return folder


def _submit(tmp: Path, url: str, name: str, pages: int, **kw: Any) -> int:
    cfg = {
        "engine": "fake",
        "engine_options": {"delay": 0.15},
        "max_workers": kw.pop("cap", None),
        "preprocess": "off",
    }
    return ocrbatch.submit(
        [_inputs(tmp / name, pages)], tmp / f"out-{name}", db=url, config=cfg, name=name,
        queue="q", **kw,
    )  # fmt: skip


def _worker(url: str, workers: int = 2, *, until_idle: bool = True) -> subprocess.Popen[str]:
    extra = ["--exit-when-idle"] if until_idle else []
    return subprocess.Popen(
        [sys.executable, "-m", "ocrbatch", "--progress", "none", "worker", "--queue", "q",
         "--workers", str(workers), "--db", url, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )  # fmt: skip


def _finish(*procs: subprocess.Popen[str], timeout: float = 180) -> None:
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        assert p.returncode == 0, out


def _running(st: Store, job: int) -> int:
    return next((q.running for q in st.queue_demand("q") if q.id == job), 0)


def _running_pages(st: Store, job: int) -> int:
    """Pages of the job running now, whatever the job's status (queue_demand lists only
    active jobs: a paused job's pages would read as none)."""
    return sum(p["status"] == "running" for d in st.iter_documents(job) for p in d["pages"])


@pytest.fixture
def st(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    yield store
    store.close()


def test_share_priority_first_then_fair_within_a_priority_with_caps() -> None:
    assert share(4, [Demand(1, 0), Demand(2, 5)]) == {2: 4}
    assert share(4, [Demand(1, 0), Demand(2, 5, cap=1)]) == {2: 1, 1: 3}
    assert share(5, [Demand(1, 0, running=3), Demand(2, 0), Demand(3, 0)]) == {2: 3, 3: 2}
    assert share(3, [Demand(1, 0), Demand(2, 0)]) == {1: 2, 2: 1}  # ties: the older first
    assert share(3, [Demand(1, 0, running=2, cap=2)]) == {}


def test_two_coordinators_on_one_queue_no_page_twice_none_lost(
    tmp_path: Path, store_url: str, st: Store
) -> None:
    jobs = {f"j{i}": _submit(tmp_path, store_url, f"j{i}", 12) for i in range(3)}
    a, b = _worker(store_url), _worker(store_url)
    _finish(a, b)
    pids = set()
    for name, job in jobs.items():
        info = st.get_job(job)
        assert (info.status, info.successful_pages, info.total_pages) == ("completed", 12, 12)
        doc_pages = [p for d in st.iter_documents(job) for p in d["pages"]]
        assert len(doc_pages) == 12 and {p["attempt"] for p in doc_pages} == {1}  # claimed once
        pids |= {p["worker_id"] for p in doc_pages}
        lines = (tmp_path / f"out-{name}" / "results.jsonl").read_text().splitlines()
        assert sorted(json.loads(x)["path"] for x in lines) == sorted(
            str(p) for p in (tmp_path / name).iterdir()
        )
    assert len(pids) > 2  # both coordinators' pools did pages (two processes each)


def test_a_later_high_priority_job_finishes_first(
    tmp_path: Path, store_url: str, st: Store
) -> None:
    low = _submit(tmp_path, store_url, "low", 30)
    a, b = _worker(store_url, 1), _worker(store_url, 1)
    deadline = time.monotonic() + 120
    while st.get_job(low).processed_pages < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    high = _submit(tmp_path, store_url, "high", 4, priority=10)
    _finish(a, b)
    lo, hi = st.get_job(low), st.get_job(high)
    assert lo.status == hi.status == "completed"
    assert hi.completed_at is not None and lo.completed_at is not None
    assert hi.completed_at < lo.completed_at


def test_fair_share_between_equal_jobs_and_a_job_cap(tmp_path: Path, db_url: str) -> None:
    st = Store(db_url)
    a = _submit(tmp_path, db_url, "a", 16)
    b = _submit(tmp_path, db_url, "b", 16)
    capped = _submit(tmp_path, db_url, "c", 8, cap=1)
    seen: dict[int, int] = {a: 0, b: 0, capped: 0}
    both = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = {j: _running(st, j) for j in seen}
            both.append(now[a] > 0 and now[b] > 0)
            for j, n in now.items():
                seen[j] = max(seen[j], n)
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    try:
        ocrbatch.work("q", db=db_url, workers=3, exit_when_idle=True)
    finally:
        stop.set()
        t.join()
    assert all(st.get_job(j).status == "completed" for j in seen)
    assert seen[capped] == 1  # never more than its cap
    print(f"a and b side by side in {sum(both)} of {len(both)} samples")
    assert sum(both) > len(both) / 3  # a and b ran side by side, not one after the other
    st.close()


def test_pause_resume_and_cancel_from_another_process_within_a_second(
    tmp_path: Path, store_url: str, st: Store
) -> None:
    job = _submit(tmp_path, store_url, "long", 40)
    other = _submit(tmp_path, store_url, "other", 40)
    w = _worker(store_url, 2, until_idle=False)
    try:
        wait_until(lambda: st.get_job(job).processed_pages >= 3, 120, "3 pages done")
        ocrbatch.pause(job, db=store_url)
        # Stopped within the second-long check (and its last outcomes recorded).
        wait_until(lambda: _running_pages(st, job) == 0, 1.5, "paused job's pages stopped")
        done = {p["id"]: p["completed_at"] for d in st.iter_documents(job) for p in d["pages"]
                if p["status"] == "completed"}  # fmt: skip
        holds_for(lambda: st.get_job(job).processed_pages == len(done), 0.5, "paused job still")
        ocrbatch.cancel(other, db=store_url)
        wait_until(lambda: _running_pages(st, other) == 0, 1.5, "cancelled job's pages stopped")
        assert st.get_job(other).status == "cancelled"
        assert ocrbatch.release(job, db=store_url) == "q"
        wait_until(lambda: st.get_job(job).status == "completed", 120, "job completed")
    finally:
        w.terminate()
        w.communicate(timeout=60)
    after = {p["id"]: p for d in st.iter_documents(job) for p in d["pages"]}
    assert all(after[i]["completed_at"] == c for i, c in done.items())  # finished pages kept
    assert st.get_job(job).successful_pages == 40
    left = {p["status"] for d in st.iter_documents(other) for p in d["pages"]}
    assert left <= {"completed", "cancelled"} and "cancelled" in left


def test_cli_submit_worker_pause_and_resume_to_the_queue(tmp_path: Path, cli: Any) -> None:
    src = _inputs(tmp_path / "in", 3)
    sub = cli("submit", str(src), "--out", str(tmp_path / "out"), "--engine", "fake",
              "--priority", "3", "--queue", "q", check=True)  # fmt: skip
    assert "submitted to queue 'q' (priority 3)" in sub.stdout
    job = sub.stdout.split()[1]
    cli("pause", job, check=True)
    assert cli("worker", "--queue", "q", "--exit-when-idle", check=True).returncode == 0
    assert json.loads(cli("status", job, "--json", check=True).stdout)["status"] == "paused"
    assert "back in queue 'q'" in cli("resume", job, check=True).stdout
    cli("worker", "--queue", "q", "--workers", "1", "--exit-when-idle", check=True)
    status = json.loads(cli("status", job, "--json", check=True).stdout)
    assert (status["status"], status["pages_done"], status["queue"]) == ("completed", 3, "q")
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 3


def test_a_queued_job_keeps_its_page_options(tmp_path: Path, cli: Any) -> None:
    """The worker reads pages as `submit` was told: password, preprocessing (and dpi,
    --force-ocr, cache), not with the defaults."""
    from tests.badfiles import encrypted_pdf

    src = _inputs(tmp_path / "in", 1)
    encrypted_pdf(src / "locked.pdf", user="s3cret")
    sub = cli("submit", str(src), "--out", str(tmp_path / "out"), "--engine", "fake",
              "--password", "s3cret", "--preprocess", "off", "--queue", "opts",
              check=True)  # fmt: skip
    job = sub.stdout.split()[1]
    cli("worker", "--queue", "opts", "--exit-when-idle", check=True)
    status = json.loads(cli("status", job, "--json", check=True).stdout)
    assert (status["status"], status["pages_done"], status["pages_failed"]) == ("completed", 3, 0)
    rows = {
        Path(r["path"]).name: r
        for r in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())
    }
    assert rows["locked.pdf"]["text"].startswith("Secret page one")
    png = next(r for name, r in rows.items() if name.endswith(".png"))
    info = png["page_results"][0]["info"]
    assert "quality" not in info and info["steps"] == []  # off: not even the quality check
