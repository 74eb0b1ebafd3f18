"""The job session and both coordinator loops, fast and in-process: the in-memory store,
the in-process SequentialExecutor and the fake engine reading no image (no processes,
no files). What needs real processes is under tests/integration."""

from __future__ import annotations

from typing import Any

import pytest

from ocrbatch.config import RunConfig
from ocrbatch.executors.sequential import SequentialExecutor
from ocrbatch.model import DocumentRef, JobStatus
from ocrbatch.progress import ProgressCounter
from ocrbatch.scheduler import Control, Scheduler
from ocrbatch.session import JobSession, claim_job_for_run, owner_id
from ocrbatch.store import Store
from ocrbatch.testing import memory_store
from ocrbatch.worker import QueueWorker


def _job(st: Store, names: list[str], *, queue: str | None = None, **cfg: Any) -> int:
    options = {"read_image": False, **cfg.pop("engine_options", {})}
    config = RunConfig(engine="fake", engine_options=options, retry_backoff=0.0, **cfg)
    job = st.create_job(
        name="t",
        config=config.model_dump(mode="json"),
        result_key=config.result_key(),
        inputs=["x"],
        mode="parallel",
        max_retries=config.max_retries,
    )
    docs = [DocumentRef(f"/in/{n}", n, 1, f"h-{n}", page_count=1, weight=1.0) for n in names]
    st.add_documents(job, docs, max_retries=config.max_retries, reuse=False)
    st.finish_discovery(job)
    if queue:
        st.enqueue(job, queue)
    return job


def _run(st: Store, job: int, control: Control | None = None) -> JobStatus:
    info = claim_job_for_run(st, st.get_job(job))
    session = JobSession(st, info, owner_id())
    return Scheduler(session, SequentialExecutor(), control=control).run()


def _texts(st: Store, job: int) -> dict[str, tuple[str, str | None]]:
    return {
        d["rel_path"]: (d["status"], d["pages"][0]["result_text"]) for d in st.iter_documents(job)
    }


@pytest.fixture
def st() -> Store:
    return memory_store()


def test_a_job_runs_to_completion_with_its_figures(st: Store) -> None:
    job = _job(st, ["a.png", "b.png", "c.png"])
    assert _run(st, job) == JobStatus.COMPLETED
    info = st.get_job(job)
    assert (info.status, info.processed_pages, info.successful_documents) == ("completed", 3, 3)
    assert _texts(st, job)["b.png"] == ("completed", "fake text of b.png page 1")
    assert info.owner is None and info.running_since is None and info.completed_at is not None
    assert info.run_seconds > 0 and info.workers == 1
    assert info.progress is not None and info.progress["pages_total"] == 3


def test_retries_follow_the_policy_and_the_last_failure_stays(st: Store) -> None:
    job = _job(st, ["ok.png", "flaky.png", "bad.png"], max_retries=2,
               engine_options={"fail_on": ["flaky", "bad"], "crash_attempts": 1})  # fmt: skip
    # flaky fails its first attempt only (crash_attempts=1: fails while attempt <= 1)
    assert _run(st, job) == JobStatus.COMPLETED
    texts = _texts(st, job)
    assert texts["flaky.png"][0] == "completed" and texts["bad.png"][0] == "completed"
    pages = {d["rel_path"]: d["pages"][0] for d in st.iter_documents(job)}
    assert pages["flaky.png"]["retry_count"] == 1 and pages["ok.png"]["retry_count"] == 0

    always = _job(st, ["x.png"], max_retries=1, engine_options={"fail_on": ["x"]})
    assert _run(st, always) == JobStatus.FAILED  # every document failed
    (page,) = next(iter(st.iter_documents(always)))["pages"]
    assert (page["status"], page["retry_count"], page["attempt"]) == ("failed", 1, 2)
    assert page["error_message"] == "fake: engine failure"


def test_an_input_error_is_not_retried(st: Store) -> None:
    job = _job(st, ["ok.png", "bad.png"], max_retries=3, engine_options={"bad_on": ["bad"]})
    assert _run(st, job) == JobStatus.COMPLETED
    pages = {d["rel_path"]: d["pages"][0] for d in st.iter_documents(job)}
    assert (pages["bad.png"]["status"], pages["bad.png"]["attempt"]) == ("failed", 1)
    assert st.get_job(job).failed_documents == 1


def test_a_pause_puts_the_pages_held_back_and_resume_finishes(st: Store) -> None:
    job = _job(st, [f"p{i}.png" for i in range(6)])
    control = Control()
    control.request("pause")  # as Ctrl-C would, before any page
    assert _run(st, job, control) == JobStatus.PAUSED
    info = st.get_job(job)
    assert info.status == "paused" and info.owner is None
    assert st.unfinished_tasks(job) == 6  # every page back to pending
    st.requeue(job)
    assert _run(st, job) == JobStatus.COMPLETED
    assert st.get_job(job).processed_pages == 6


def test_a_cancel_asked_through_the_store_stops_the_loop(st: Store) -> None:
    job = _job(st, [f"p{i}.png" for i in range(4)], engine_options={"delay": 0.3})
    info = claim_job_for_run(st, st.get_job(job))
    session = JobSession(st, info, owner_id())
    session.TICK_SECONDS = 0.0  # read the store's status at every turn

    class CancelAfterOne(SequentialExecutor):
        def collect(self, timeout: float) -> Any:
            out = super().collect(timeout)
            if out:
                st.cancel_job(job, running_too=False)
            return out

    assert Scheduler(session, CancelAfterOne()).run() == JobStatus.CANCELLED
    statuses = {d["pages"][0]["status"] for d in st.iter_documents(job)}
    assert statuses <= {"completed", "cancelled"} and "cancelled" in statuses
    assert st.unfinished_tasks(job) == 0


def test_retry_failed_gives_failed_pages_a_fresh_set_of_retries(st: Store) -> None:
    job = _job(st, ["a.png", "b.png"], max_retries=0,
               engine_options={"fail_on": ["b"], "crash_attempts": 1})  # fmt: skip
    assert _run(st, job) == JobStatus.COMPLETED
    assert st.get_job(job).failed_documents == 1
    assert st.reset_failed(job) == 1
    assert st.get_job(job).failed_documents == 0
    assert _run(st, job) == JobStatus.COMPLETED  # attempt 2 > crash_attempts: it passes
    assert _texts(st, job)["b.png"][0] == "completed"


def test_two_queue_jobs_are_finished_once_each_with_their_files(st: Store) -> None:
    a = _job(st, ["a1.png", "a2.png"], queue="q")
    b = _job(st, ["b1.png"], queue="q")
    finished: list[int] = []
    worker = QueueWorker(st, SequentialExecutor(), "q", on_finished=finished.append,
                         exit_when_idle=True)  # fmt: skip
    assert sorted(worker.run()) == sorted([a, b]) == sorted(finished)
    assert st.get_job(a).status == st.get_job(b).status == "completed"
    assert st.get_job(a).run_seconds > 0


def test_progress_counter_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrbatch import progress

    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    c = ProgressCounter(job_id=1, name="j", total_pages=100, total_documents=100)
    assert c.snapshot().eta_seconds is None  # no rate yet
    now[0] += 10
    c.add(20, failed=2, documents=20, failed_documents=2)
    snap = c.snapshot()
    assert snap.pages_per_second == pytest.approx(2.0)  # 20 pages in 10 s
    assert snap.eta_seconds == pytest.approx(40.0)  # 80 left at 2/s
    assert snap.as_dict()["percent"] == 20.0
    now[0] += 70  # the first 20 pages leave the 60 s window
    c.add(10)
    assert c.snapshot().pages_per_second == pytest.approx(10 / 60)
