"""A job's result files: scored against ground truth first, then every format, the
error log and summary.json, written from the store (streamed), each atomically; the
store records whether they are complete. `run`, the queue worker and `export` all
write them through :func:`write_outputs`."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from .config import RunConfig, default_db_url
from .errors import OutputError
from .evaluation import evaluate_job
from .exporters import (
    ExportOptions,
    atomic_writer,
    build_summary,
    error_records,
    export_all,
    remove_stale_temp_outputs,
)
from .groundtruth import GroundTruthRules
from .intake import DEFAULT_OUT, check_out
from .model import JobStatus
from .store import Store

__all__ = ["cli_hint", "ground_truth_rules", "summary_of", "write_outputs"]

log = structlog.get_logger("ocrbatch.outputs")

_ENDED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def cli_hint(command: str, job: int | str | None, db: str | None) -> str:
    """The command a person can paste to act on ``job``: with ``--db`` when the job's
    store is not the one the CLI opens by default (OCRBATCH_DB, else the user's)."""
    hint = f"ocrbatch {command}" if job is None else f"ocrbatch {command} {job}"
    if db and db != default_db_url():
        hint += f" --db {shlex.quote(db)}"
    return hint


def ground_truth_rules(cfg: RunConfig) -> GroundTruthRules:
    folder = cfg.ground_truth
    if folder and not Path(folder).is_dir():
        # Checked when the job was submitted; gone since: score with files beside inputs.
        log.warning("ground_truth_missing", folder=folder)
        folder = None
    return GroundTruthRules(folder, cfg.casefold, cfg.ignore_chars)


def summary_of(st: Store, job_id: int, cfg: RunConfig) -> dict[str, Any]:
    """The job's summary as it stands in the store (no files written)."""
    job = st.get_job(job_id)
    row = {f: getattr(job, f) for f in job.__dataclass_fields__}
    return build_summary(row, st.page_stats(job_id), cfg.price_per_cpu_hour, job.workers)


def write_outputs(
    st: Store,
    job_id: int,
    cfg: RunConfig,
    formats: Sequence[str] | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Write the job's result files into its output folder (or ``out``); returns the
    summary. A job not finished yet (paused) gets partial files, marked so in
    summary.json. A file that cannot be written (a full disk...) is one OutputError line
    saying how to write them later; the job stays recorded in the store, its outputs
    marked incomplete."""
    job = st.get_job(job_id)
    own = out is None
    partial = job.status not in _ENDED
    out_dir = check_out(out or Path(job.output_path or DEFAULT_OUT / f"job-{job_id}"))
    # Temp files of a writer that was killed (kill -9 during export) would stay forever.
    stale = remove_stale_temp_outputs(out_dir)
    if stale:
        log.info("stale_temp_files_removed", folder=str(out_dir), files=stale)
    try:
        summary = _write_files(st, job_id, cfg, formats or cfg.format, out_dir, partial)
    except OSError as exc:
        if own:
            st.record_outputs(job_id, "incomplete")
        where = exc.filename or out_dir
        raise OutputError(
            f"cannot write the results to {where}: {exc.strerror or exc}; the job is "
            f"recorded in the store: `{cli_hint('export', job_id, st.url)}` writes them "
            "once that is fixed"
        ) from None
    if own:
        st.record_outputs(job_id, "partial" if partial else "complete", summary)
    return summary


def _write_files(
    st: Store,
    job_id: int,
    cfg: RunConfig,
    formats: Sequence[str],
    out_dir: Path,
    partial: bool,
) -> dict[str, Any]:
    # Scores and review flags go into the pages' info first, so the results carry them.
    evaluation = evaluate_job(st, job_id, ground_truth_rules(cfg), cfg.min_confidence)
    result = export_all(
        formats,
        lambda: st.iter_documents(job_id),
        out_dir,
        ExportOptions(password=cfg.password, max_pixels=cfg.max_pixels),
    )
    with atomic_writer(out_dir / "errors.jsonl") as f:
        for rec in error_records(st.iter_failed_pages(job_id)):
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        for problem in result.problems:
            f.write(json.dumps(problem.record(), ensure_ascii=False) + "\n")
    summary = summary_of(st, job_id, cfg)
    if partial:
        summary["partial"] = True  # the job has pages left (paused)
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
    return summary
