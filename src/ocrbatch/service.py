"""The service layer, and the Python API: what the CLI (and later the REST app under
``api/``, as ARCHITECTURE.md draws it) call. ``ocrbatch.run`` and friends come from here.

>>> summary = ocrbatch.run(["scans/"], out="results/")        # doctest: +SKIP
>>> summary["documents"]["completed"]                           # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from .config import RunConfig, default_cache_dir, default_db_url, validate
from .discovery import apart, check_inputs
from .engines import engine_class, validate_engine_options
from .errors import ConfigError, JobStateError, OutputError
from .evaluation import evaluate_job
from .executors import (
    Executor,
    default_workers,
    make_executor,
    preflight,
    refuse_in_worker_startup,
)
from .exporters import (
    ExportOptions,
    atomic_writer,
    build_summary,
    error_records,
    export_all,
    remove_stale_temp_outputs,
    temp_prefix,
)
from .groundtruth import GroundTruthRules
from .model import JobStatus
from .progress import Reporter
from .scheduler import (
    Control,
    Scheduler,
    claim_job_for_run,
    ingest,
    install_signal_handlers,
    owner_alive,
    restore_signal_handlers,
)
from .store import JobInfo, Store

__all__ = [
    "cancel",
    "evaluate",
    "executor_for",
    "export",
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


def open_store(db: str | None = None) -> Store:
    """The job store at ``db`` (default: OCRBATCH_DB or the user's data folder)."""
    return Store(db or default_db_url())


def make_config(config: RunConfig | Mapping[str, Any] | None = None, **overrides: Any) -> RunConfig:
    """A validated RunConfig; engine options are checked by the engine's own model."""
    data = config.model_dump() if isinstance(config, RunConfig) else dict(config or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    cfg: RunConfig = validate(RunConfig, data, "run")
    opts = validate_engine_options(cfg.engine, cfg.engine_options)
    check = getattr(engine_class(cfg.engine), "check", None)
    if check is not None:
        check(opts)
    return cfg.model_copy(update={"engine_options": opts})


# A job without --out writes to ocrbatch-results/job-<id> under the working folder.
_DEFAULT_OUT = Path("ocrbatch-results")


def _out_root(job: JobInfo) -> Path:
    """The output folder to keep out of the job's inputs: the job's own, or all of
    ocrbatch-results/ for a default one (earlier jobs' results are not inputs either)."""
    out = Path(job.output_path or _DEFAULT_OUT)
    if out.name == f"job-{job.id}" and out.parent.name == _DEFAULT_OUT.name:
        return out.parent
    return out


def _own_paths(
    st: Store, cfg: RunConfig, out_root: Path, inputs: Sequence[str]
) -> tuple[tuple[str, str], ...]:
    """(real path, what) of everything ocrbatch itself writes, which is never an input:
    the output folder, the job database's files (SQLite), the page cache, and the output
    folders of earlier jobs (unless an input named on the command line lies in one)."""
    own = [(out_root, "the output folder")]
    own += [(f, "the job database") for f in st.database_files()]
    own.append((Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir(), "the page cache"))
    earlier = [
        (os.path.realpath(p), f"the output folder of job {j}") for j, p in st.output_folders()
    ]
    return tuple((os.path.realpath(p), what) for p, what in own) + tuple(apart(inputs, earlier))


def _check_out(out: Path) -> Path:
    out = out.expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Named as the atomic writer names its temp files: cleared if we are killed here.
        with tempfile.NamedTemporaryFile(dir=out, prefix=temp_prefix(), suffix=".tmp"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return out


def submit(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    db: str | None = None,
    name: str | None = None,
    description: str | None = None,
    config: RunConfig | Mapping[str, Any] | None = None,
    force: bool = False,
    priority: int = 0,
    queue: str | None = None,
    store: Store | None = None,
) -> int:
    """Create a job and discover its documents into the store, without running it.

    With ``queue``, the job joins that queue once its documents are all discovered, and
    ``ocrbatch worker`` processes pick it up (higher ``priority`` first).
    """
    refuse_in_worker_startup("ocrbatch.submit()")
    paths = [os.fspath(p) for p in inputs]
    cfg = make_config(config)
    if cfg.ground_truth and not Path(cfg.ground_truth).is_dir():
        raise ConfigError(f"--ground-truth folder not found: {cfg.ground_truth}")
    st = store or open_store(db)
    try:
        out_root = Path(out).expanduser().resolve() if out else _DEFAULT_OUT.resolve()
        check_inputs(paths, _own_paths(st, cfg, out_root, paths))
        return _submit(st, paths, out, cfg, name, description, force, priority, queue)
    finally:
        if store is None:
            st.close()


def _submit(
    st: Store,
    paths: list[str],
    out: str | os.PathLike[str] | None,
    cfg: RunConfig,
    name: str | None,
    description: str | None,
    force: bool,
    priority: int,
    queue: str | None,
) -> int:
    now = dt.datetime.now(dt.UTC)
    job_name = name or f"{Path(paths[0].lstrip('@')).name or 'job'}-{now:%Y%m%d-%H%M%S}"
    # --out is checked before the job exists; the default folder is named after the job.
    out_path = str(_check_out(Path(out))) if out else str(_check_out(_DEFAULT_OUT) / "job-{id}")
    job_id = st.create_job(
        name=job_name,
        description=description,
        config=cfg.model_dump(mode="json"),
        result_key=cfg.result_key(),
        inputs=paths,
        mode=cfg.mode,
        priority=priority,
        output_path=out_path,
        force=force,
        max_workers=cfg.workers,
        batch_size=cfg.batch_size,
        timeout=cfg.timeout,
        max_retries=cfg.max_retries,
    )
    if not out:
        _check_out(Path(st.get_job(job_id).output_path or "."))
    job = st.get_job(job_id)
    ingest(st, job, exclude=_own_paths(st, cfg, _out_root(job), job.inputs))
    if queue:
        # Only now: a worker never sees a job whose discovery is half done (a crash
        # before this line leaves a job outside the queue that `resume --here` finishes).
        st.update_job(job_id, queue=queue)
    return job_id


def job_queue(job: int | str, *, db: str | None = None) -> str | None:
    """The queue of a job (None: a foreground job)."""
    st = open_store(db)
    try:
        return st.get_job(job).queue
    finally:
        st.close()


def release(job: int | str, *, db: str | None = None) -> str:
    """Put a paused (or interrupted, or finished with pages left) queue job back in its
    queue; its workers continue it within about a second. Returns the queue's name."""
    st = open_store(db)
    try:
        info = st.get_job(job)
        if not info.queue:
            raise JobStateError(f"job {info.id} is not in a queue; `ocrbatch resume` runs it here")
        if info.status == JobStatus.CANCELLED:
            raise JobStateError(f"job {info.id} was cancelled; it cannot be resumed")
        if info.status == JobStatus.RUNNING and owner_alive(info):
            raise JobStateError(f"job {info.id} is running already ({info.owner})")
        st.transition(info.id, JobStatus.PENDING)
        return info.queue
    finally:
        st.close()


def work(
    queue: str = "default",
    *,
    db: str | None = None,
    mode: str = "parallel",
    workers: int | None = None,
    exit_when_idle: bool = False,
    handle_signals: bool = False,
    executor: Executor | None = None,
    **executor_options: Any,
) -> list[int]:
    """Process the jobs of ``queue`` (``ocrbatch worker``) until stopped, or until the
    queue is idle with ``exit_when_idle``; returns the ids of the jobs it finished.

    ``executor_options``: ray_address, ship_pages, cpus_per_worker, gpus_per_worker.
    """
    from .worker import QueueWorker

    refuse_in_worker_startup("ocrbatch.work()")
    st = open_store(db)
    cfg = validate(RunConfig, {"mode": mode, "workers": workers, **executor_options}, "worker")
    ex = executor or executor_for(cfg, workers)

    def finished(job_id: int) -> None:
        info = st.get_job(job_id)
        try:
            _write_outputs(st, job_id, make_config(info.ocr_config), info.max_workers)
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
        st.close()


def run(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    db: str | None = None,
    name: str | None = None,
    description: str | None = None,
    config: RunConfig | Mapping[str, Any] | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
    handle_signals: bool = False,
) -> dict[str, Any]:
    """OCR ``inputs`` into ``out``; returns the summary (also written to summary.json).

    With ``handle_signals``, Ctrl-C and SIGTERM pause the job (``resume`` continues).
    """
    refuse_in_worker_startup("ocrbatch.run()")
    preflight(make_config(config).mode)
    st = open_store(db)
    try:
        job_id = submit(
            inputs,
            out,
            db=db,
            name=name,
            description=description,
            config=config,
            force=force,
            store=st,
        )
        return _execute(st, st.get_job(job_id), reporter, handle_signals)
    finally:
        st.close()


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
    st = open_store(db)
    try:
        info = st.get_job(job)
        done = info.status in (JobStatus.COMPLETED, JobStatus.FAILED)
        if done and not st.unfinished_tasks(info.id):
            if info.outputs != "complete":  # e.g. the disk was full at the end
                cfg = _with_password(make_config(info.ocr_config), password)
                return _write_outputs(st, info.id, cfg, info.max_workers)
            raise JobStateError(
                f"job {info.id} is already {info.status} "
                f"(`{cli_hint('retry-failed', info.id, st.url)}` runs its failed pages again; "
                f"`{cli_hint('export', info.id, st.url)}` rewrites its files)"
            )
        return _execute(st, info, reporter, handle_signals, workers=workers, password=password)
    finally:
        st.close()


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
    st = open_store(db)
    try:
        info = st.get_job(job)
        if info.status == JobStatus.RUNNING and owner_alive(info):
            raise JobStateError(f"job {info.id} is running in {info.owner}")
        n = st.reset_failed(info.id)
        log.info("retry_failed", job=info.id, pages_and_documents=n)
        return _execute(st, st.get_job(info.id), reporter, handle_signals, password=password)
    finally:
        st.close()


def _execute(
    st: Store,
    job: JobInfo,
    reporter: Reporter | None,
    handle_signals: bool,
    workers: int | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    claim_job_for_run(st, job)
    if password is not None:
        st.remember_password(job.id, password)  # until the job ends
        job = st.get_job(job.id)
    cfg = make_config(job.ocr_config)
    if not job.discovery_done:
        ingest(st, job, exclude=_own_paths(st, cfg, _out_root(job), job.inputs))
    job = st.get_job(job.id)
    executor = executor_for(cfg, workers)
    control = Control()
    old = install_signal_handlers(control) if handle_signals else {}
    try:
        status = Scheduler(st, job.id, executor, cfg, reporter=reporter, control=control).run()
    finally:
        restore_signal_handlers(old)
    n = executor.workers
    if status in (JobStatus.COMPLETED, JobStatus.FAILED):
        summary = _write_outputs(st, job.id, cfg, n)
    elif status == JobStatus.PAUSED:
        # What is done so far, marked partial; `resume` writes the whole at the end.
        summary = _write_outputs(st, job.id, cfg, n)
        log.info("paused", job=job.id, hint=cli_hint("resume", job.id, st.url))
    else:
        summary = _summary(st, job.id, cfg, n)
    if status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
        st.forget_password(job.id)
    return summary


def executor_for(cfg: RunConfig, workers: int | None = None) -> Executor:
    """The executor a job's config asks for (worker count: ``workers``, the config's, or
    from this machine's cores and memory; in distributed mode, from the cluster)."""
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
    )


def _summary(st: Store, job_id: int, cfg: RunConfig, workers: int | None) -> dict[str, Any]:
    job = st.get_job(job_id)
    row = {f: getattr(job, f) for f in job.__dataclass_fields__}
    return build_summary(row, st.page_stats(job_id), cfg.price_per_cpu_hour, workers)


def _write_outputs(
    st: Store,
    job_id: int,
    cfg: RunConfig,
    workers: int | None,
    formats: Sequence[str] | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Write the job's result files; the store records whether they are complete (a job
    not finished yet, e.g. paused, gets partial ones, marked so in summary.json). A file
    that cannot be written (full disk...) is one OutputError line that says how to write
    them later; the job itself stays recorded in the store."""
    job = st.get_job(job_id)
    own = out is None
    partial = job.status not in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
    out_dir = _check_out(out or Path(job.output_path or f"ocrbatch-results/job-{job_id}"))
    # Temp files of a writer that was killed (kill -9 during export) would stay forever.
    stale = remove_stale_temp_outputs(out_dir)
    if stale:
        log.info("stale_temp_files_removed", folder=str(out_dir), files=stale)
    try:
        summary = _write_files(st, job_id, cfg, workers, formats, out_dir, partial)
    except OSError as exc:
        if own:
            st.set_outputs(job_id, "incomplete")
        where = exc.filename or out_dir
        raise OutputError(
            f"cannot write the results to {where}: {exc.strerror or exc}; the job is "
            f"recorded in the store: `{cli_hint('export', job_id, st.url)}` writes them "
            "once that is fixed"
        ) from None
    if own:
        st.set_outputs(job_id, "partial" if partial else "complete")
    return summary


def _write_files(
    st: Store,
    job_id: int,
    cfg: RunConfig,
    workers: int | None,
    formats: Sequence[str] | None,
    out_dir: Path,
    partial: bool,
) -> dict[str, Any]:
    # Scores and review flags go into the pages' info first, so the results carry them.
    evaluation = evaluate_job(st, job_id, _rules(cfg), cfg.min_confidence)
    result = export_all(
        formats or cfg.formats,
        lambda: st.iter_documents(job_id),
        out_dir,
        ExportOptions(password=cfg.password, max_pixels=cfg.max_image_pixels),
    )
    with atomic_writer(out_dir / "errors.jsonl") as f:
        for rec in error_records(st.iter_failed_pages(job_id)):
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        for problem in result.problems:
            f.write(json.dumps(problem.record(), ensure_ascii=False) + "\n")
    summary = _summary(st, job_id, cfg, workers)
    if partial:
        summary["partial"] = True  # written at a pause: the job has pages left
    for key, section in (
        ("accuracy", evaluation.accuracy_summary()),
        ("review", evaluation.review_summary()),
    ):
        if section is not None:
            summary[key] = section
    # Files of documents that could not be written (errors.jsonl, kind "export").
    summary["export_errors"] = len(result.problems)
    with atomic_writer(out_dir / "summary.json") as f:
        f.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    st.update_job(job_id, summary=summary)
    return summary


def cli_hint(command: str, job: int | str, db: str | None) -> str:
    """The command a person can paste to act on ``job``: with ``--db`` when the job's
    store is not the one the CLI opens by default (OCRBATCH_DB, else the user's)."""
    hint = f"ocrbatch {command} {job}"
    if db and db != default_db_url():
        hint += f" --db {shlex.quote(db)}"
    return hint


def export(
    job: int | str,
    *,
    db: str | None = None,
    formats: Sequence[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """Rebuild result files (and summary.json, errors.jsonl) from the store at any time.

    ``password`` opens encrypted input PDFs for the searchable PDF (the store keeps the
    job's own only until the job ends)."""
    st = open_store(db)
    try:
        info = st.get_job(job)
        cfg = _with_password(make_config(info.ocr_config), password)
        if formats is not None:
            cfg = validate(RunConfig, {**cfg.model_dump(), "formats": list(formats)}, "export")
        return _write_outputs(
            st, info.id, cfg, info.max_workers, cfg.formats, Path(out) if out else None
        )
    finally:
        st.close()


def _with_password(cfg: RunConfig, password: str | None) -> RunConfig:
    return cfg if password is None else cfg.model_copy(update={"password": password})


def _rules(cfg: RunConfig) -> GroundTruthRules:
    folder = cfg.ground_truth
    if folder and not Path(folder).is_dir():
        # Checked when the job was submitted; gone since: score with files beside inputs.
        log.warning("ground_truth_missing", folder=folder)
        folder = None
    return GroundTruthRules(folder, cfg.casefold, cfg.ignore_chars)


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
    st = open_store(db)
    try:
        info = st.get_job(job)
        cfg = make_config(
            info.ocr_config,
            ground_truth=ground_truth,
            casefold=casefold,
            ignore_chars=ignore_chars,
            min_confidence=min_confidence,
        )
        if cfg.ground_truth and not Path(cfg.ground_truth).is_dir():
            raise ConfigError(f"--ground-truth folder not found: {cfg.ground_truth}")
        ev = evaluate_job(st, info.id, _rules(cfg), cfg.min_confidence)
        return {
            "job": info.id,
            "name": info.name,
            "accuracy": ev.accuracy_summary(),
            "review": ev.review_summary(),
        }
    finally:
        st.close()


def job_status(job: int | str | None = None, *, db: str | None = None) -> dict[str, Any]:
    """Figures of a job (the newest if ``job`` is None) read from the store."""
    st = open_store(db)
    try:
        if job is None:
            jobs = st.list_jobs(limit=1)
            if not jobs:
                raise ConfigError("no jobs in the store yet")
            info = jobs[0]
        else:
            info = st.get_job(job)
        return _status_dict(info)
    finally:
        st.close()


def _status_dict(info: JobInfo) -> dict[str, Any]:
    live = info.status == JobStatus.RUNNING and owner_alive(info)
    status = str(info.status)
    if info.status == JobStatus.RUNNING and not live:
        status = "interrupted"  # its coordinator died: `resume` continues it
    progress = (info.summary or {}).get("progress") if live else None
    rate = eta = None
    if progress:
        rate, eta = progress.get("pages_per_s"), progress.get("eta_s")
    elif info.summary:
        rate = info.summary.get("throughput_pages_per_s")
    return {
        "job": info.id,
        "name": info.name,
        "status": status,
        "mode": info.mode,
        "priority": info.priority,
        "queue": info.queue,
        "pages_done": info.processed_pages,
        "pages_total": info.total_pages,
        "pages_failed": info.failed_pages,
        "documents_done": info.processed_documents,
        "documents_total": info.total_documents,
        "documents_failed": info.failed_documents,
        "documents_reused": info.reused_documents,
        "percent": round(info.progress_percentage, 1),
        "pages_per_s": rate,
        "eta_s": eta,
        "estimated_completion": (
            info.estimated_completion.isoformat() if live and info.estimated_completion else None
        ),
        "created_at": info.created_at.isoformat(),
        "owner": info.owner if live else None,
        "output_path": info.output_path,
    }


def list_jobs(*, db: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest jobs, as status dicts."""
    st = open_store(db)
    try:
        return [_status_dict(j) for j in st.list_jobs(limit)]
    finally:
        st.close()


def cancel(job: int | str, *, db: str | None = None) -> None:
    """Cancel a job; a coordinator running it stops within about a second."""
    st = open_store(db)
    try:
        info = st.get_job(job)
        st.transition(info.id, JobStatus.CANCELLED)
        st.cancel_pending(info.id, running=not owner_alive(info))
        st.forget_password(info.id)
    finally:
        st.close()


def pause(job: int | str, *, db: str | None = None) -> None:
    """Pause a job from another process; its coordinator stops within about a second."""
    st = open_store(db)
    try:
        info = st.get_job(job)
        st.transition(info.id, JobStatus.PAUSED, only_from=[JobStatus.RUNNING, JobStatus.PENDING])
    finally:
        st.close()
