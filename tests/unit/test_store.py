"""The store's invariants on real SQLite (file and in-memory) and PostgreSQL databases."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ocrbatch.errors import (
    ConfigError,
    DocumentError,
    EngineError,
    JobNotFoundError,
    JobStateError,
    StoreError,
    WorkerCrashedError,
)
from ocrbatch.model import DocumentRef, JobStatus, PageOutcome, PageTask
from ocrbatch.retry import RetryPolicy
from ocrbatch.store import RecordDelta, RunFigures, Store
from ocrbatch.testing import memory_store

POLICY = RetryPolicy(max_retries=2, backoff=0.0, jitter=0.0)


def _record(
    st: Store,
    job: int,
    outcomes: Sequence[PageOutcome],
    tasks: Sequence[PageTask] = (),
    policy: RetryPolicy = POLICY,
) -> RecordDelta:
    """Record as a session does: each failure's retry decided by the policy from the
    claimed task's retries so far."""
    by_id = {t.task_id: t for t in tasks}
    retry_in: dict[int, float | None] = {}
    for o in outcomes:
        if not o.ok:
            t = by_id[o.task_id]
            d = policy.decide(o.retryable, t.retry_count, t.max_retries)
            retry_in[o.task_id] = None if d is None else d.delay
    return st.record(job, outcomes, retry_in)


def _fail(t: PageTask, err: DocumentError) -> PageOutcome:
    return PageOutcome.failure(t, err)


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


def test_schema_head_is_alembics_head_and_a_store_there_opens_without_alembic(
    st: Store,
) -> None:
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import ocrbatch.store.store as store_module

    ini = Path(store_module.__file__).with_name("alembic.ini")
    assert (
        ScriptDirectory.from_config(Config(str(ini))).get_current_head() == store_module.SCHEMA_HEAD
    )
    assert st._revision() == store_module.SCHEMA_HEAD
    # A new process opening this store (now at the head) never imports Alembic.
    probe = (
        "import sys; from ocrbatch.store import Store; Store(sys.argv[1]).close(); "
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, st.url], check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "False"


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
    delta = _record(st, job, [_ok(t) for t in first + rest])
    assert (delta.pages_done, delta.documents_done, delta.stale) == (5, 5, 0)
    # The same outcomes again (a duplicate delivery) change nothing.
    again = _record(st, job, [_ok(t) for t in first])
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
            _fail(t, WorkerCrashedError("worker process died")) for t in tasks if t.page_index == 1
        ]
        delta = _record(st, job, outs, tasks)
    assert delta.pages_failed == 1 and delta.documents_failed == 1
    doc = next(iter(st.iter_documents(job)))
    assert doc["status"] == "failed"
    assert doc["error_message"] == "page 2: worker process died"
    assert [p["retry_count"] for p in doc["pages"]] == [0, 2]


def test_input_errors_are_not_retried(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(1), max_retries=2)
    (t,) = st.claim(job, 1, "me")
    d = _record(st, job, [_fail(t, DocumentError("empty file (0 bytes)"))], [t])
    assert d.retried == 0 and d.pages_failed == 1


def test_stale_outcome_of_an_earlier_attempt_is_ignored(st: Store) -> None:
    job = _job(st)
    st.add_documents(job, _docs(1), max_retries=2)
    (old,) = st.claim(job, 1, "me")
    st.requeue(job)  # e.g. the coordinator crashed; resume puts it back
    (new,) = st.claim(job, 1, "me")
    assert new.attempt == old.attempt + 1
    assert _record(st, job, [_ok(old, "stale")]).stale == 1
    assert _record(st, job, [_ok(new, "fresh")]).pages_done == 1
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
    _record(st, j1, [_ok(t, f"text {t.path}") for t in st.claim(j1, 10, "me")])
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
    _record(st, job, [_ok(a), _fail(b, EngineError("boom"))], [a, b], RetryPolicy(max_retries=0))
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
    st.cancel_job(job, running_too=True)
    with pytest.raises(JobStateError):
        st.take_job(st.get_job(job), "me")
    with pytest.raises(JobStateError):
        st.pause_job(job)
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
    _record(st, job, [_ok(a[0])])
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
    assert _record(st, job, [_ok(dead[0])]).stale == 1
    assert _record(st, job, [_ok(again[0]), _ok(alive[0])]).pages_done == 2


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
        )
        st.add_documents(j, _docs(docs, prefix=f"/j{j}"), max_retries=2, reuse=False)
        st.finish_discovery(j)
        st.enqueue(j, "q")
        return j

    low, high, low2, empty = queued(0, 2), queued(5, 1), queued(0, 1), queued(1, 0)
    _job(st)  # a foreground job: never in the queue
    demand = st.queue_demand("q")
    assert [d.id for d in demand] == [high, empty, low, low2]
    assert [(d.ready, d.unfinished) for d in demand] == [(True, True), (False, False)] + [
        (True, True)
    ] * 2
    assert st.start_queued_job(high, "me") and not st.start_queued_job(high, "me")
    st.claim(high, 1, "me")
    d = {x.id: x for x in st.queue_demand("q")}
    assert (d[high].running, d[high].ready, d[high].status) == (1, False, JobStatus.RUNNING)
    assert st.queue_demand("other") == []
    assert st.finish_job(empty, JobStatus.COMPLETED, RunFigures())
    assert not st.finish_job(empty, JobStatus.COMPLETED, RunFigures())
    assert st.job_statuses([empty, high]) == {empty: "completed", high: "running"}


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


def test_migration_0005_converts_times_and_config_names_of_an_existing_store(
    store_url: str,
) -> None:
    """A store written before 0005 (epoch floats, old config keys) opens with its data."""
    import datetime as dt

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    url = store_url
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    cfg = Config(str(Path(__import__("ocrbatch.store.store").store.store.__file__).with_name(
        "alembic.ini")))  # fmt: skip

    def json_of(sql: str) -> str:
        return sql if engine.dialect.name == "sqlite" else f"CAST({sql} AS JSON)"

    with engine.begin() as c:
        cfg.attributes["connection"] = c
        command.upgrade(cfg, "0004")
        c.execute(text(
            "INSERT INTO jobs (id, name, mode, priority, status, total_documents, "
            "processed_documents, successful_documents, failed_documents, reused_documents, "
            "total_pages, processed_pages, successful_pages, failed_pages, progress_percentage,"
            " created_at, run_seconds, cpu_seconds, total_cost, ocr_config, result_key, inputs,"
            " discovery_done, force, heartbeat_at, queue, batch_size, timeout_per_document) "
            "VALUES (1, 'old', 'parallel', 0, 'running', 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, "
            "'2026-01-01 00:00:00.000000', 0, 0, 0, @cfg, 'k', @no, "
            "TRUE, FALSE, 1767225600.25, 'q', 64, 30.0)"
            .replace("@cfg", json_of(":cfg")).replace("@no", json_of(":no"))
        ), {"cfg": '{"formats": ["jsonl", "csv"], "max_image_pixels": 99, "batch_size": 64,'
                   ' "workers": 3}', "no": "[]"})  # fmt: skip
        c.execute(text("INSERT INTO documents (id, job_id, path, rel_path, result_key, "
                       "page_count, status, created_at) VALUES (1, 1, '/a', 'a', 'k', 1, "
                       "'pending', '2026-01-01 00:00:00.000000')"))  # fmt: skip
        c.execute(text("INSERT INTO tasks (id, job_id, document_id, page_index, file_path, "
                       "status, attempt, retry_count, max_retries, weight, available_at, "
                       "lease_expires_at) VALUES (1, 1, 1, 0, '/a', 'running', 1, 0, 3, 1.0, "
                       "0.0, 1767225660.5)"))  # fmt: skip
    engine.dispose()
    with Store(url) as st:  # migrates to head on open
        job = st.get_job(1)
        assert job.heartbeat_at == dt.datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=dt.UTC)
        assert job.page_timeout == 30.0
        assert job.ocr_config == {"format": ["jsonl", "csv"], "max_pixels": 99, "max_workers": 3}
        with st._read() as c:
            avail, lease = c.execute(text("SELECT available_at, lease_expires_at FROM tasks")).one()
        assert str(avail).startswith("1970-01-01 00:00:00")
        assert str(lease).startswith("2026-01-01 00:01:00.5")
        # The converted task is claimed again once its (converted) lease ran out.
        assert [t.task_id for t in st.claim(1, 5, "new")] == [1]


def test_a_paused_or_cancelled_job_gives_no_more_pages(st: Store) -> None:
    """A coordinator that has not seen the pause yet claims nothing more."""
    job = _job(st)
    st.add_documents(job, _docs(4), max_retries=2)
    assert len(st.claim(job, 1, "me")) == 1
    st.pause_job(job)
    assert st.claim(job, 10, "me") == []
    st.release_job(job)
    assert len(st.claim(job, 1, "me")) == 1
    st.cancel_job(job, running_too=False)
    assert st.claim(job, 10, "me") == []
