"""The Python API, and what every face (the CLI, the REST app) calls.

>>> import ocrbatch
>>> summary = ocrbatch.run(["scans/"], out="results/", workers=2, format="jsonl,pdf")
>>> summary["documents"]["completed"]

Options are named as on the command line (``--max-retries`` is ``max_retries``;
``lang``, ``psm``, ``model`` and ``tessdata`` are the Tesseract engine's), or given as a
``config`` (a :class:`~ocrbatch.RunConfig` or a mapping); each default is RunConfig's.
"""

from __future__ import annotations

import functools
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from .config import RunConfig, validate
from .errors import ConfigError, JobStateError
from .evaluation import evaluate_job
from .executors import (
    Executor,
    available_cores,
    default_workers,
    make_executor,
    preflight,
    refuse_in_worker_startup,
)
from .intake import create_job, ingest, make_config
from .model import JobStatus
from .outputs import cli_hint, ground_truth_rules, summary_of, write_outputs
from .progress import Reporter
from .scheduler import Control, Scheduler, install_signal_handlers, restore_signal_handlers
from .session import JobSession, claim_job_for_run, owner_alive, owner_id
from .status import find_job, job_status, list_jobs, open_store
from .store import JobInfo, Store

__all__ = [
    "cancel",
    "evaluate",
    "executor_for",
    "export",
    "find_job",
    "job_queue",
    "job_status",
    "list_jobs",
    "make_config",
    "open_store",
    "pause",
    "release",
    "resume",
    "retry_failed",
    "run",
    "submit",
    "work",
]

log = structlog.get_logger("ocrbatch")

Config = RunConfig | Mapping[str, Any] | None


# -- starting work ------------------------------------------------------------------------
def submit(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    db: str | None = None,
    name: str | None = None,
    description: str | None = None,
    config: Config = None,
    force: bool = False,
    priority: int = 0,
    queue: str | None = None,
    **options: Any,
) -> int:
    """Create a job and discover its documents into the store, without running it.

    With ``queue``, the job joins that queue once its documents are all discovered, and
    ``ocrbatch worker`` processes pick it up (higher ``priority`` first).
    """
    refuse_in_worker_startup("ocrbatch.submit()")
    cfg = make_config(config, **options)
    with open_store(db) as st:
        job = _create(st, inputs, out, cfg, name, description, force, priority)
        ingest(st, job)
        if queue:
            # Only now: a worker never sees a job whose discovery is half done (a crash
            # before this line leaves a job outside the queue that `resume --here` ends).
            st.enqueue(job.id, queue)
        return job.id


def _create(
    st: Store,
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None,
    cfg: RunConfig,
    name: str | None,
    description: str | None,
    force: bool,
    priority: int = 0,
) -> JobInfo:
    paths = [os.fspath(p) for p in inputs]
    return create_job(
        st, paths, out, cfg, name=name, description=description, force=force, priority=priority
    )


def run(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    db: str | None = None,
    name: str | None = None,
    description: str | None = None,
    config: Config = None,
    force: bool = False,
    reporter: Reporter | None = None,
    handle_signals: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """OCR ``inputs`` into ``out``; returns the summary (also written to summary.json).

    With ``handle_signals``, Ctrl-C and SIGTERM pause the job (``resume`` continues).
    """
    refuse_in_worker_startup("ocrbatch.run()")
    cfg = make_config(config, **options)
    preflight(cfg.mode)
    with open_store(db) as st:
        job = _create(st, inputs, out, cfg, name, description, force)
        return _execute(st, job, reporter, handle_signals)


def resume(
    job: int | str,
    *,
    db: str | None = None,
    reporter: Reporter | None = None,
    handle_signals: bool = False,
    workers: int | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """Continue a paused, interrupted or crashed job; finished pages are not redone.

    ``password``: the PDF password, for a job that has ended (the store forgets it then).
    """
    refuse_in_worker_startup("ocrbatch.resume()")
    with open_store(db, create=False) as st:
        info = _not_standing(find_job(st, job), st.url)
        done = info.status in (JobStatus.COMPLETED, JobStatus.FAILED)
        if done and not st.unfinished_tasks(info.id):
            if info.outputs != "complete":  # e.g. the disk was full at the end
                cfg = _with_password(make_config(info.ocr_config), password)
                return write_outputs(st, info.id, cfg)
            raise JobStateError(
                f"job {info.id} is already {info.status} "
                f"(`{cli_hint('retry-failed', info.id, st.url)}` runs its failed pages again; "
                f"`{cli_hint('export', info.id, st.url)}` rewrites its files)"
            )
        return _execute(st, info, reporter, handle_signals, workers, password)


def retry_failed(
    job: int | str,
    *,
    db: str | None = None,
    reporter: Reporter | None = None,
    handle_signals: bool = False,
    password: str | None = None,
) -> dict[str, Any]:
    """Give every failed page of a job a fresh set of retries and run them
    (``password``: the PDF password, which the store forgot when the job ended)."""
    refuse_in_worker_startup("ocrbatch.retry_failed()")
    with open_store(db, create=False) as st:
        info = _not_standing(find_job(st, job), st.url)
        if info.status == JobStatus.RUNNING and owner_alive(info):
            raise JobStateError(f"job {info.id} is running in {info.owner}")
        n = st.reset_failed(info.id)
        log.info("retry_failed", job=info.id, pages_and_documents=n)
        return _execute(st, st.get_job(info.id), reporter, handle_signals, password=password)


def _not_standing(info: JobInfo, url: str) -> JobInfo:
    """A standing job runs under `ocrbatch watch` only (its discovery never ends)."""
    if info.watch:
        source, out = shlex.quote(str(info.watch["source"])), shlex.quote(info.output_path or "")
        hint = cli_hint(f"watch {source} --out {out}", None, url)
        raise JobStateError(f"job {info.id} is a standing job: `{hint}` continues it")
    return info


def _execute(
    st: Store,
    job: JobInfo,
    reporter: Reporter | None,
    handle_signals: bool,
    workers: int | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    cfg = make_config(job.ocr_config)  # a missing engine or model: an error now
    job = claim_job_for_run(st, job)
    if password is not None:
        st.remember_password(job.id, password)  # until the job ends
        job = st.get_job(job.id)
        cfg = _with_password(cfg, password)
    executor = executor_for(cfg, workers)
    # A pool runs one engine per core; alone (sequential) the engine takes them all.
    threads = available_cores() if cfg.mode == "sequential" else 1
    session = JobSession(st, job, owner_id(), threads=threads, reporter=reporter)
    discover = None if job.discovery_done else functools.partial(ingest, st, job)
    control = Control()
    old = install_signal_handlers(control) if handle_signals else {}
    try:
        status = Scheduler(session, executor, control=control).run(discover)
    finally:
        restore_signal_handlers(old)
    if status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.PAUSED):
        summary = write_outputs(st, job.id, cfg)  # partial when paused
    else:
        summary = summary_of(st, job.id, cfg)
    if status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
        st.forget_password(job.id)
    return summary


def executor_for(cfg: RunConfig, workers: int | None = None) -> Executor:
    """The executor a job's config asks for (worker count: ``workers``, the config's, or
    from this machine's cores and memory; in distributed mode, from the cluster)."""
    from .engines import engine_class

    n = workers or cfg.workers
    if cfg.mode == "sequential":
        n = 1
    elif n is None and cfg.mode == "parallel":
        n = default_workers(engine_class(cfg.engine).memory_per_worker_mb)
    return make_executor(
        cfg.mode,
        n,
        timeout=cfg.timeout,
        recycle_after=cfg.recycle_after,
        ray_address=cfg.ray_address,
        ship_pages=cfg.ship_pages,
        cpus_per_worker=cfg.cpus_per_worker,
        gpus_per_worker=cfg.gpus_per_worker,
        engine=cfg.engine,
        engine_options=cfg.engine_options,
        nice=cfg.worker_nice,
    )


# -- the queue ----------------------------------------------------------------------------
def job_queue(job: int | str, *, db: str | None = None) -> str | None:
    """The queue of a job (None: a foreground job)."""
    with open_store(db, create=False) as st:
        return find_job(st, job).queue


def release(job: int | str, *, db: str | None = None, failed: bool = False) -> str:
    """Put a paused (or interrupted, or finished with pages left) queue job back in its
    queue; its workers continue it within about a second. With ``failed``, its failed
    pages (and documents) get a fresh set of retries first. Returns the queue's name."""
    with open_store(db, create=False) as st:
        info = find_job(st, job)
        if not info.queue:
            raise JobStateError(
                f"job {info.id} is not in a queue; `{cli_hint('resume', info.id, st.url)}` "
                "runs it here"
            )
        if info.status == JobStatus.CANCELLED:
            raise JobStateError(f"job {info.id} was cancelled; it cannot be resumed")
        if info.status == JobStatus.RUNNING and owner_alive(info):
            raise JobStateError(f"job {info.id} is running already ({info.owner})")
        if failed:
            log.info("retry_failed", job=info.id, pages_and_documents=st.reset_failed(info.id))
        st.release_job(info.id)
        return info.queue


def work(
    queue: str = "default",
    *,
    db: str | None = None,
    exit_when_idle: bool = False,
    handle_signals: bool = False,
    executor: Executor | None = None,
    **options: Any,
) -> list[int]:
    """Process the jobs of ``queue`` (``ocrbatch worker``) until stopped, or until the
    queue is idle with ``exit_when_idle``; returns the ids of the jobs it finished.

    ``options``: where the jobs run (mode, workers, ray_address, ship_pages,
    cpus_per_worker, gpus_per_worker); what each job is comes from the job itself.
    """
    from .worker import QueueWorker

    refuse_in_worker_startup("ocrbatch.work()")
    cfg: RunConfig = validate(
        RunConfig, {k: v for k, v in options.items() if v is not None}, "worker"
    )
    with open_store(db) as st:
        ex = executor or executor_for(cfg)

        def finished(job_id: int) -> None:
            info = st.get_job(job_id)
            try:
                write_outputs(st, job_id, make_config(info.ocr_config))
            finally:
                st.forget_password(job_id)

        control = Control()
        old = install_signal_handlers(control) if handle_signals else {}
        try:
            w = QueueWorker(
                st, ex, queue, on_finished=finished, control=control, exit_when_idle=exit_when_idle
            )
            return w.run()
        finally:
            restore_signal_handlers(old)


# -- looking and steering -----------------------------------------------------------------
def export(
    job: int | str,
    *,
    db: str | None = None,
    format: str | Sequence[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """Rebuild result files (and summary.json, errors.jsonl) from the store at any time
    (a job not finished yet gets partial ones). ``password`` opens encrypted input PDFs
    for the searchable PDF (the store keeps the job's own only until the job ends)."""
    with open_store(db, create=False) as st:
        info = find_job(st, job)
        cfg = _with_password(make_config(info.ocr_config, format=format), password)
        return write_outputs(st, info.id, cfg, cfg.format, os.fspath(out) if out else None)


def _with_password(cfg: RunConfig, password: str | None) -> RunConfig:
    return cfg if password is None else cfg.model_copy(update={"password": password})


def evaluate(
    job: int | str,
    *,
    db: str | None = None,
    ground_truth: str | None = None,
    casefold: bool | None = None,
    ignore_chars: str | None = None,
    min_confidence: float | None = None,
) -> dict[str, Any]:
    """Score a job against ground truth (the job's own settings unless overridden);
    records the scores and review flags on its pages and returns
    ``{"job", "accuracy", "review"}`` (``accuracy`` is None without ground truth)."""
    with open_store(db, create=False) as st:
        info = find_job(st, job)
        cfg = make_config(
            info.ocr_config,
            ground_truth=ground_truth,
            casefold=casefold,
            ignore_chars=ignore_chars,
            min_confidence=min_confidence,
        )
        if cfg.ground_truth and not Path(cfg.ground_truth).is_dir():
            raise ConfigError(f"--ground-truth folder not found: {cfg.ground_truth}")
        ev = evaluate_job(st, info.id, ground_truth_rules(cfg), cfg.min_confidence)
        return {
            "job": info.id,
            "name": info.name,
            "accuracy": ev.accuracy_summary(),
            "review": ev.review_summary(),
        }


def cancel(job: int | str, *, db: str | None = None) -> None:
    """Cancel a job; a coordinator running it stops within about a second."""
    with open_store(db, create=False) as st:
        info = find_job(st, job)
        st.cancel_job(info.id, running_too=not owner_alive(info))
        st.forget_password(info.id)


def pause(job: int | str, *, db: str | None = None) -> None:
    """Pause a job from another process; its coordinator stops within about a second."""
    with open_store(db, create=False) as st:
        st.pause_job(find_job(st, job).id)
