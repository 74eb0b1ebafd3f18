"""A crash campaign: a 300-document job killed with SIGKILL (coordinator and workers,
as when a machine or a terminal session dies) at 20 random instants spread over
discovery, running and export, resumed after each; at the end every document is there
exactly once and results.jsonl equals an uninterrupted run's, line for line, except for
timings and attempt counts (a page in flight at a kill is read again)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ocrbatch.store import Store
from tests.badfiles import good_png, text_pdf

DOCS = 300
KILLS = 20
# Per-page and per-record fields that differ between two correct runs.
_TIMING = {"processing_time", "cpu_time", "completed_at", "worker", "attempts"}
ARGS = ["--engine", "fake", "--engine-opt", "delay=0.05", "--preprocess", "off",
        "--workers", "2", "--format", "jsonl,csv,json,txt,hocr,alto"]  # fmt: skip


def _inputs(folder: Path) -> Path:
    for i in range(DOCS - 10):
        sub = folder / f"d{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        good_png(sub / f"page {i:03}.png", text=f"page {i}")
    for i in range(10):  # multi-page documents: their pages are separate tasks
        text_pdf(folder / f"doc{i}.pdf", [f"pdf {i} page {p}" for p in range(4)])
    return folder


def _cmd(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "ocrbatch", "--progress", "none", *args, "--db", db]


_ORDER = {None: 0, "discovery": 0, "running": 1, "export": 2, "done": 3}


def _phase(db: str) -> tuple[str | None, int]:
    """Where the job is now, read from the store: None (no job yet), discovery, running,
    export (done in the store, files not all written) or done; and its pages done."""
    try:
        st = Store(db)
    except Exception:
        return None, 0
    try:
        jobs = st.list_jobs(1)
        if not jobs:
            return None, 0
        job = jobs[0]
        if not job.discovery_done:
            return "discovery", 0
        if job.status in ("completed", "failed"):
            return ("done" if job.outputs == "complete" else "export"), job.processed_pages
        return "running", job.processed_pages
    finally:
        st.close()


def _writing(out: Path) -> bool:
    """An export is writing into ``out`` now (its temp files are there)."""
    return out.is_dir() and any(p.name.endswith(".tmp") for p in out.rglob(".*"))


def _records(out: Path) -> list[dict[str, Any]]:
    def strip(r: dict[str, Any]) -> dict[str, Any]:
        r = {k: v for k, v in r.items() if k not in _TIMING}
        pages = []
        for raw in r["page_results"]:
            p = {k: v for k, v in raw.items() if k not in _TIMING}
            if "info" in p:  # seconds each step took
                p["info"] = {k: v for k, v in p["info"].items() if not k.endswith("_s")}
            pages.append(p)
        r["page_results"] = pages
        return r

    return [strip(json.loads(x)) for x in (out / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_twenty_kills_then_results_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    src = _inputs(tmp_path / "in")
    ref_db = f"sqlite:///{tmp_path / 'ref.db'}"
    ref = subprocess.run(_cmd(ref_db, "run", str(src), "--out", str(tmp_path / "ref"), *ARGS),
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         check=False)  # fmt: skip
    assert ref.returncode == 0, ref.stderr

    db = f"sqlite:///{tmp_path / 'crash.db'}"
    out = tmp_path / "out"
    rng = random.Random(20261130)
    # The kills, in the order the job meets them; each lands at a random instant inside
    # its phase: the store is polled and the process group killed once the job is seen
    # there (running: after some progress; export: while its files are being written),
    # after a random extra wait.
    plan = ["discovery"] * 3 + ["running"] * 12 + ["export"] * 5
    hit: dict[str, int] = {}
    last_done = 0
    for target in plan:
        for _ in range(10):
            phase0, _ = _phase(db)
            if _ORDER[phase0] > _ORDER[target]:
                break  # the job is past this phase already
            args = ["resume", "1"] if phase0 else ["run", str(src), "--out", str(out), *ARGS]
            proc = subprocess.Popen(_cmd(db, *args), cwd=tmp_path, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)  # fmt: skip
            ready = False
            deadline = time.monotonic() + 120
            while not ready and proc.poll() is None and time.monotonic() < deadline:
                phase, done = _phase(db)
                if target == "discovery":
                    ready = phase == "discovery"
                    wait = rng.uniform(0.0, 0.05)
                elif target == "running":
                    ready = phase == "running" and done > last_done
                    wait = rng.uniform(0.0, 0.4)
                else:
                    ready = phase == "export" and _writing(out)
                    wait = rng.uniform(0.0, 0.1)
                time.sleep(wait if ready else 0.005)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                hit[target] = hit.get(target, 0) + 1
                last_done = _phase(db)[1]
                break
            proc.communicate()  # it got through the phase before the kill: once more
    kills = sum(hit.values())
    # Finish without kills.
    final = subprocess.run(_cmd(db, "resume", "1"), cwd=tmp_path, capture_output=True,
                           text=True, timeout=300, check=False)  # fmt: skip
    assert final.returncode in (0, 6), final.stderr  # 6: it was already complete
    assert _phase(db)[0] == "done"
    print(f"kills by phase: {hit}")
    assert kills >= KILLS - 2 and hit.get("running", 0) >= 8, hit
    assert hit.get("discovery", 0) >= 1 and hit.get("export", 0) >= 2, hit

    got, want = _records(out), _records(tmp_path / "ref")
    assert len(got) == DOCS and len({r["path"] for r in got}) == DOCS  # each exactly once
    for g, w in zip(got, want, strict=True):
        assert g == w, {k: (g.get(k), w.get(k)) for k in g if g.get(k) != w.get(k)}
    st = Store(db)
    job = st.get_job(1)
    assert (job.total_documents, job.successful_documents, job.total_pages) == (DOCS, DOCS, 330)
    st.close()
    for fmt in ("text", "hocr", "alto"):
        assert len(list((out / fmt).rglob("*.*"))) == DOCS
    assert not [p for p in out.rglob(".*") if p.name.endswith(".tmp")]  # no leftovers
