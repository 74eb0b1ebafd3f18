"""Issue 10: what must hold around a job when things go wrong outside the page itself:
two coordinators on one job, a full disk, a page that hangs in sequential mode, the PDF
password, and worker processes that cannot start. Real processes, real SQLite files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ocrbatch
from ocrbatch.store import Store
from tests.badfiles import encrypted_pdf, good_png

Cli = Any
FAKE = ["--engine", "fake", "--preprocess", "off"]


def _pngs(folder: Path, n: int, prefix: str = "p") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        good_png(folder / f"{prefix}{i:03}.png", text=str(i))
    return folder


def _results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


# -- row 8: exactly one coordinator owns a job ------------------------------------------


def test_two_coordinators_taking_one_job_at_once_exactly_one_wins(db_url: str) -> None:
    """The ownership is one conditional update: both read the job paused, one wins."""

    a, b = Store(db_url), Store(db_url)
    job = a.create_job(name="j", config={}, result_key="k", inputs=[], mode="parallel")
    a.pause_job(job)
    seen_a, seen_b = a.get_job(job), b.get_job(job)
    assert [a.take_job(seen_a, "host:1"), b.take_job(seen_b, "host:2")] == [True, False]
    assert b.get_job(job).owner == "host:1"
    a.close()
    b.close()


def test_two_resumes_started_together_only_one_runs(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", 24)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    config = {"engine": "fake", "preprocess": "off", "engine_options": {"delay": 0.25}}
    job = str(ocrbatch.submit([src], tmp_path / "out", db=db, config=config))
    env = {**os.environ, "OCRBATCH_DB": db}
    cmd = [sys.executable, "-m", "ocrbatch", "--progress", "none", "resume", job,
           "--workers", "2"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, env=env, cwd=tmp_path, text=True, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [(p.returncode, p.communicate(timeout=200)[1]) for p in procs]
    results = [(p.returncode, err) for p, (_, err) in zip(procs, results, strict=True)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 6], results
    loser = next(err for code, err in results if code == 6)
    assert f"job {job} is being run by " in loser and len(loser.strip().splitlines()) == 1
    recs = _results(tmp_path / "out")
    assert len(recs) == 24 and {r["status"] for r in recs} == {"completed"}
    # No page was read twice: one attempt each.
    assert {p["attempts"] for r in recs for p in r["page_results"]} == {1}


# -- row 9: a full disk under --out --------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB file system (tmpfs), mounted for the test; skips where mounting is
    not allowed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_one_line_and_resume_writes_the_results_later(
    tmp_path: Path, cli: Cli, small_disk: Path
) -> None:
    src = _pngs(tmp_path / "in", 30)
    out = small_disk / "out"
    filler = small_disk / "filler"
    # Leave about 20 KB: results.jsonl of 30 documents with 2 KB of text each does not fit.
    with open(filler, "wb") as f:
        f.write(b"\0" * (1024 * 1024 - 20 * 1024))
    text = "word " * 400
    proc = cli("run", str(src), "--out", str(out), *FAKE, "--engine-opt", f"text={text}",
               "--name", "full")  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "Traceback" not in proc.stderr
    assert f"cannot write the results to {out}" in err[0]
    assert "No space left on device" in err[0] and "`ocrbatch export 1" in err[0]
    status = json.loads(cli("status", "full", "--json", check=True).stdout)
    assert status["status"] == "completed" and status["pages_done"] == 30
    st = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    assert st.get_job(1).outputs == "incomplete"
    st.close()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no half files
    filler.unlink()  # room again: resume writes what was missing
    cli("resume", "full", check=True)
    assert len(_results(out)) == 30
    assert json.loads((out / "summary.json").read_text())["documents"]["completed"] == 30
    st = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    assert st.get_job(1).outputs == "complete"
    st.close()


# -- row 10: the page timeout in sequential mode -------------------------------------


@pytest.mark.timeout(120)
def test_sequential_mode_kills_a_page_that_hangs(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", 3)
    good_png(src / "hang.png")
    t0 = time.monotonic()
    proc = cli("run", str(src), "--out", str(tmp_path / "out"), *FAKE, "--mode", "sequential",
               "--timeout", "3", "--max-retries", "0", "--engine-opt", "hang_on=hang")  # fmt: skip
    assert time.monotonic() - t0 < 90
    recs = {Path(r["path"]).name: r for r in _results(tmp_path / "out")}
    assert recs["hang.png"]["error"] == "timed out after 3s; the worker was killed and replaced"
    assert [recs[f"p{i:03}.png"]["status"] for i in range(3)] == ["completed"] * 3
    assert proc.returncode != 0  # a failed document is not a success (see the exit codes)


# -- row 11: the PDF password ---------------------------------------------------------


def test_password_is_forgotten_when_the_job_ends_and_the_store_is_private(
    tmp_path: Path, cli: Cli
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    encrypted_pdf(src / "locked.pdf", user="s3cret")
    db = tmp_path / "private" / "jobs.db"
    env = {"OCRBATCH_DB": f"sqlite:///{db}"}
    cli("run", str(src), "--out", str(tmp_path / "out"), *FAKE, "--force-ocr", env=env,
        check=False)  # fmt: skip
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    # Without the password the pages fail; retry-failed with it (from the environment).
    rec = _results(tmp_path / "out")[0]
    assert rec["status"] == "failed" and "password" in rec["error"]
    cli("retry-failed", "1", env={**env, "OCRBATCH_PDF_PASSWORD": "s3cret"}, check=True)
    assert _results(tmp_path / "out")[0]["status"] == "completed"
    st = Store(f"sqlite:///{db}")
    assert st.get_job(1).ocr_config["password"] is None  # not kept after the job ended
    st.close()
    assert b"s3cret" not in db.read_bytes()


def test_password_is_kept_while_a_job_is_paused(tmp_path: Path, db_url: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    encrypted_pdf(src / "locked.pdf", user="s3cret")
    job = ocrbatch.submit([src], tmp_path / "out", db=db_url,
                          config={"engine": "fake", "password": "s3cret"})  # fmt: skip
    ocrbatch.pause(job, db=db_url)
    st = Store(db_url)
    assert st.get_job(job).ocr_config["password"] == "s3cret"  # noqa: S105 - resume needs it
    st.close()
    summary = ocrbatch.resume(job, db=db_url)
    assert summary["documents"]["completed"] == 1
    st = Store(db_url)
    assert st.get_job(job).ocr_config["password"] is None
    st.close()


# -- row 13: workers that cannot start -----------------------------------------------

_SCRIPT = """\
import ocrbatch
summary = ocrbatch.run(["in"], out="out", db="sqlite:///jobs.db",
                       config={"engine": "fake", "preprocess": "off", "workers": 2})
print(summary["status"])
"""


@pytest.mark.timeout(120)
def test_script_on_stdin_fails_at_once_with_one_line(tmp_path: Path) -> None:
    _pngs(tmp_path / "in", 2)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-"], input=_SCRIPT, text=True, cwd=tmp_path,
                          capture_output=True, timeout=100, check=False)  # fmt: skip
    assert proc.returncode == 1 and time.monotonic() - t0 < 30
    last = proc.stderr.strip().splitlines()[-1]
    assert "cannot import the main script '<stdin>'" in last
    assert not (tmp_path / "jobs.db").exists()  # refused before a job was made


@pytest.mark.timeout(120)
def test_script_without_main_guard_fails_once_naming_the_guard(tmp_path: Path) -> None:
    _pngs(tmp_path / "in", 2)
    (tmp_path / "script.py").write_text(_SCRIPT)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "script.py"], text=True, cwd=tmp_path,
                          capture_output=True, timeout=100, check=False)  # fmt: skip
    assert proc.returncode == 1 and time.monotonic() - t0 < 60
    last = proc.stderr.strip().splitlines()[-1]
    assert "WorkerStartError: worker processes could not start" in last
    assert 'if __name__ == "__main__":' in last
    jobs = ocrbatch.list_jobs(db=f"sqlite:///{tmp_path / 'jobs.db'}")
    assert [j["status"] for j in jobs] == ["failed"]  # one job, not one per worker


def test_workers_run_at_a_lower_cpu_priority_than_the_coordinator(tmp_path: Path) -> None:
    """Batch work yields: the coordinator (and a service, a shell) stay responsive."""
    import psutil

    from tests.conftest import wait_until

    src = _pngs(tmp_path / "in", 6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocrbatch", "--progress", "none", "run", str(src), *FAKE,
         "--engine-opt", "delay=1", "-o", str(tmp_path / "out"), "--workers", "2",
         "--worker-nice", "12", "--db", f"sqlite:///{tmp_path / 'j.db'}"],
    )  # fmt: skip
    try:
        me = psutil.Process(proc.pid)

        def workers() -> list[psutil.Process]:
            return [p for p in me.children(recursive=True) if "forkserver" in " ".join(p.cmdline())]

        def niced() -> int:
            return sum(p.nice() == 12 for p in workers())

        # Two workers at nice 12 once they have started (the forkserver stays at 0).
        wait_until(lambda: niced() == 2, 60, "two workers at nice 12")
        assert me.nice() == 0
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0
