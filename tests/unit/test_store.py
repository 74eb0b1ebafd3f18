"""The store's invariants on real SQLite (file and in-memory) and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocrbatch.errors import ConfigError, JobNotFoundError, JobStateError, StoreError
from ocrbatch.model import DocumentRef, JobStatus, PageOutcome, PageTask
from ocrbatch.retry import RetryPolicy
from ocrbatch.store import Store
from ocrbatch.testing import memory_store

POLICY = RetryPolicy(max_retries=2, backoff=0.0, jitter=0.0)


def _job(st: Store, key: str = "k", force: bool = False) -> int:
    return st.create_job(
        name="t",
        config={},
        result_key=key,
        inputs=["x"],
        mode="parallel",
        max_retries=2,
        force=force,
    )


def _docs(n: int, pages: int = 1, prefix: str = "/d") -> list[DocumentRef]:
    return [
        DocumentRef(f"{prefix}/{i}.png", f"{i}.png", 10, f"h{i}", page_count=pages, weight=float(i))
        for i in range(n)
    ]


def _ok(t: PageTask, text: str = "x") -> PageOutcome:
    return PageOutcome(
        t.task_id,
        t.attempt,
        True,
        page={"text": text, "conf": 0.9, "width": 1, "height": 1, "blocks": []},
        processing_time=0.5,
        cpu_time=0.4,
    )


@pytest.fixture
def st(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    yield store
    store.close()


def test_migrations_build_exactly_the_declared_schema(st: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect

    from ocrbatch.store.tables import metadata

    def comparable(obj: object, name: str | None, kind: str, *_: object) -> bool:
        # Alembic cannot compare an index on an expression (weight DESC): it is checked
        # by name below instead.
        return not (kind == "index" and name == "ix_tasks_claim_order")

    with st.engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"include_object": comparable})
        diff = compare_metadata(ctx, metadata)
        indexes = {i["name"] for i in inspect(c).get_indexes("tasks")}
    assert diff == []
    assert "ix_tasks_claim_order" in indexes


def test_claim_record_each_task_once_biggest_first(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(5), max_retries=2)
    first = st.claim(job, 2, "me")
    assert [t.path for t in first] == ["/d/4.png", "/d/3.png"]  # largest weight first
    rest = st.claim(job, 10, "me")
    assert len(rest) == 3 and not st.claim(job, 10, "me")
    delta = st.record(job, [_ok(t) for t in first + rest], POLICY)
    assert (delta.pages_done, delta.documents_done, delta.stale) == (5, 5, 0)
    # The same outcomes again (a duplicate delivery) change nothing.
    again = st.record(job, [_ok(t) for t in first], POLICY)
    assert again.stale == 2 and again.pages_done == 0
    info = st.get_job(job)
    assert (info.processed_pages, info.successful_documents, info.progress_percentage) == (
        5,
        5,
        100.0,
    )


def test_failures_retry_then_fail_with_reason_and_document_error_lists_pages(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(1, pages=2), max_retries=2)
    for attempt in (1, 2, 3):
        tasks = st.claim(job, 10, "me")
        assert {t.attempt for t in tasks} == {attempt}
        outs = [_ok(tasks[0])] if attempt == 1 else []
        outs += [
            PageOutcome.failure(t, "crash", "worker process died", retryable=True)
            for t in tasks
            if t.page_index == 1
        ]
        delta = st.record(job, outs, POLICY)
    assert delta.pages_failed == 1 and delta.documents_failed == 1
    doc = next(iter(st.iter_documents(job)))
    assert doc["status"] == "failed"
    assert doc["error_message"] == "page 2: worker process died"
    assert [p["retry_count"] for p in doc["pages"]] == [0, 2]


def test_input_errors_are_not_retried(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(1), max_retries=2)
    (t,) = st.claim(job, 1, "me")
    d = st.record(
        job, [PageOutcome.failure(t, "input", "empty file (0 bytes)", retryable=False)], POLICY
    )
    assert d.retried == 0 and d.pages_failed == 1


def test_stale_outcome_of_an_earlier_attempt_is_ignored(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(1), max_retries=2)
    (old,) = st.claim(job, 1, "me")
    st.requeue(job)  # e.g. the coordinator crashed; resume puts it back
    (new,) = st.claim(job, 1, "me")
    assert new.attempt == old.attempt + 1
    assert st.record(job, [_ok(old, "stale")], POLICY).stale == 1
    assert st.record(job, [_ok(new, "fresh")], POLICY).pages_done == 1
    assert next(iter(st.iter_documents(job)))["pages"][0]["result_text"] == "fresh"


def test_discovery_errors_are_recorded_as_failed_documents(st: Store) -> None:
    job = _job(st)
    bad = DocumentRef("/d/empty.png", "empty.png", 0, None, error="empty file (0 bytes)")
    st.add_documents(job, [*_docs(1), bad], max_retries=2)
    info = st.get_job(job)
    assert (info.total_documents, info.failed_documents, info.total_pages) == (2, 1, 1)
    errors = list(st.iter_failed_pages(job))
    assert errors == [
        {
            "path": "/d/empty.png",
            "doc_error": "empty file (0 bytes)",
            "page_index": None,
            "error_kind": None,
            "error_message": None,
            "attempt": None,
            "retry_count": None,
            "worker_id": None,
        }
    ]


def test_completed_content_is_reused_under_the_same_result_key_unless_forced(st: Store) -> None:
    j1 = _job(st)
    st.add_documents(j1, _docs(2), max_retries=2)
    st.record(j1, [_ok(t, f"text {t.path}") for t in st.claim(j1, 10, "me")], POLICY)
    j2 = _job(st)
    added, reused = st.add_documents(j2, _docs(3, prefix="/copy"), max_retries=2)
    assert (added, reused) == (3, 2)
    assert len(st.claim(j2, 10, "me")) == 1  # only the new content is OCRed
    texts = {d["path"]: d["pages"][0]["result_text"] for d in st.iter_documents(j2)}
    assert texts["/copy/0.png"] == "text /d/0.png"
    j3 = _job(st, key="other-engine")
    assert st.add_documents(j3, _docs(2), max_retries=2) == (2, 0)
    j4 = _job(st)
    assert st.add_documents(j4, _docs(2), max_retries=2, reuse=False) == (2, 0)


def test_reset_failed_and_recount(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(2), max_retries=0)
    a, b = st.claim(job, 10, "me")
    st.record(
        job,
        [_ok(a), PageOutcome.failure(b, "engine", "boom", retryable=True)],
        RetryPolicy(max_retries=0),
    )
    assert st.get_job(job).failed_documents == 1
    assert st.reset_failed(job) == 1
    info = st.get_job(job)
    assert (info.failed_documents, info.processed_documents, info.processed_pages) == (0, 1, 1)
    assert [t.task_id for t in st.claim(job, 10, "me")] == [b.task_id]


def test_job_lookup_transitions_and_url_errors(tmp_path: Path) -> None:
    st = memory_store()
    job = _job(st)
    assert st.get_job("t").id == job and st.get_job(str(job)).id == job
    with pytest.raises(JobNotFoundError):
        st.get_job("nope")
    st.transition(job, JobStatus.CANCELLED)
    with pytest.raises(JobStateError):
        st.transition(job, JobStatus.RUNNING)
    with pytest.raises(ConfigError, match="malformed database URL"):
        Store("not a url")
    with pytest.raises(ConfigError, match="unsupported database URL"):
        Store("nosuchdb://x/y")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        Store(f"sqlite:///{tmp_path / 'file' / 'sub' / 'jobs.db'}")


def test_memory_store_still_works() -> None:
    st = memory_store()
    job = _job(st)
    st.add_documents(job, _docs(2), max_retries=2)
    assert len(st.claim(job, 10, "me")) == 2


def test_claim_respects_the_job_cap_across_coordinators(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(6), max_retries=2)
    a = st.claim(job, 10, "coord-a", cap=3)
    b = st.claim(job, 10, "coord-b", cap=3)
    assert (len(a), len(b)) == (3, 0)
    st.record(job, [_ok(a[0])], POLICY)
    assert len(st.claim(job, 10, "coord-b", cap=3)) == 1


def test_an_expired_lease_is_claimed_again_and_the_old_outcome_is_stale(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(2), max_retries=2)
    alive = st.claim(job, 1, "alive", lease=60.0)
    dead = st.claim(job, 1, "dead-coordinator", lease=-1.0)  # lease already ran out
    again = st.claim(job, 10, "survivor")
    assert [t.task_id for t in again] == [dead[0].task_id]
    assert again[0].attempt == dead[0].attempt + 1
    assert st.renew([alive[0].task_id], "alive") == 1
    assert st.renew([alive[0].task_id], "someone-else") == 0
    assert st.record(job, [_ok(dead[0])], POLICY).stale == 1
    assert st.record(job, [_ok(again[0]), _ok(alive[0])], POLICY).pages_done == 2


def test_requeue_of_one_owner_leaves_the_others(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(4), max_retries=2)
    st.claim(job, 2, "a")
    st.claim(job, 2, "b")
    assert st.requeue(job, owner="a") == 2
    assert {t.attempt for t in st.claim(job, 10, "c")} == {2}


def test_queue_demand_orders_by_priority_then_age_and_finish_is_once(st: Store) -> None:
    def queued(priority: int, docs: int) -> int:
        j = st.create_job(
            name=f"p{priority}",
            config={},
            result_key="k",
            inputs=["x"],
            mode="parallel",
            priority=priority,
            queue="q",
        )
        st.add_documents(j, _docs(docs, prefix=f"/j{j}"), max_retries=2, reuse=False)
        st.update_job(j, discovery_done=True)
        return j

    low, high, low2, empty = queued(0, 2), queued(5, 1), queued(0, 1), queued(1, 0)
    _job(st)  # a foreground job: never in the queue
    demand = st.queue_demand("q")
    assert [d.id for d in demand] == [high, empty, low, low2]
    assert [(d.ready, d.unfinished) for d in demand] == [(True, True), (False, False)] + [
        (True, True)
    ] * 2
    assert st.start_job(high, "me", utcnow_()) and not st.start_job(high, "me", utcnow_())
    st.claim(high, 1, "me")
    d = {x.id: x for x in st.queue_demand("q")}
    assert (d[high].running, d[high].ready, d[high].status) == (1, False, JobStatus.RUNNING)
    assert st.queue_demand("other") == []
    assert st.finish_job(empty, JobStatus.COMPLETED)
    assert not st.finish_job(empty, JobStatus.COMPLETED)
    assert st.job_statuses([empty, high]) == {empty: "completed", high: "running"}


def utcnow_() -> object:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def test_two_processes_migrating_a_new_database_at_once(store_url: str) -> None:
    """First-time migrations race: an advisory lock (PostgreSQL) or a retry (SQLite)."""
    import subprocess
    import sys

    code = "import sys; from ocrbatch.store import Store; Store(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, store_url]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    st = Store(store_url)
    assert st.list_jobs() == []
    st.close()
