"""A job's result files: scored against ground truth first, then every format, the
error log and summary.json, written from the store (streamed), each atomically; the
store records whether they are complete. `run`, the queue worker, `watch` and `export`
all write them through :func:`write_outputs`.

An ``--out`` in a bucket gets the same files as objects: each is written whole to a
local staging folder, then put as one object (a multipart upload for a large one, which
the store shows only once completed) and removed locally, so no partial object is ever
visible; summary.json goes last."""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import structlog

from .config import RunConfig, default_db_url
from .errors import DocumentError, OutputError
from .evaluation import evaluate_job
from .exporters import (
    ExportOptions,
    atomic_writer,
    build_summary,
    error_records,
    export_all,
    publishing,
    remove_stale_temp_outputs,
)
from .groundtruth import GroundTruthRules
from .intake import DEFAULT_OUT, check_out
from .model import JobStatus
from .store import Store
from .tools.storage import StorageOptions, is_url, join_url, upload

__all__ = ["cli_hint", "ground_truth_rules", "summary_of", "write_outputs"]

log = structlog.get_logger("ocrbatch.outputs")

_ENDED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def cli_hint(command: str, job: int | str | None, db: str | None) -> str:
    """The command a person can paste to act on ``job``: with ``--db`` when the job's
    store is not the one the CLI opens by default (OCRBATCH_DB, else the user's)."""
    hint = f"ocrbatch {command}" if job is None else f"ocrbatch {command} {shlex.quote(str(job))}"
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
    out: str | Path | None = None,
    *,
    documents: Collection[int] | None = None,
) -> dict[str, Any]:
    """Write the job's result files into its output folder or prefix (or ``out``);
    returns the summary. A job not finished yet (paused) gets partial files, marked so in
    summary.json. A file that cannot be written (a full disk...) is one OutputError line
    saying how to write them later; the job stays recorded in the store, its outputs
    marked incomplete. ``documents``: write the per-document files (text, hOCR, ALTO,
    PDF) of these documents only (a standing job's new ones); the files of record
    (results.jsonl...) always cover every document."""
    job = st.get_job(job_id)
    own = out is None
    partial = job.status not in _ENDED or job.watch is not None
    target = check_out(out or job.output_path or DEFAULT_OUT / f"job-{job_id}", cfg.storage_options)
    try:
        with _destination(target, cfg.storage_options) as out_dir:
            summary = _write_files(
                st, job_id, cfg, formats or cfg.format, out_dir, partial, documents
            )
    except (OSError, DocumentError) as exc:
        if own:
            st.record_outputs(job_id, "incomplete")
        if isinstance(exc, OSError):
            where, why = exc.filename or target, exc.strerror or str(exc)
        else:
            where, why = target, exc.message
        raise OutputError(
            f"cannot write the results to {where}: {why}; the job is "
            f"recorded in the store: `{cli_hint('export', job_id, st.url)}` writes them "
            "once that is fixed"
        ) from None
    if own:
        st.record_outputs(job_id, "partial" if partial else "complete", summary)
    return summary


@contextlib.contextmanager
def _destination(target: str, options: StorageOptions) -> Iterator[Path]:
    """The folder the exporters write into: the output folder itself, or for a bucket
    prefix a local staging folder whose every file is uploaded once whole, then
    removed (see the module docstring)."""
    if not is_url(target):
        out_dir = Path(target)
        # Temp files of a writer that was killed (kill -9 during export) would stay.
        stale = remove_stale_temp_outputs(out_dir)
        if stale:
            log.info("stale_temp_files_removed", folder=str(out_dir), files=stale)
        yield out_dir
        return
    staging = Path(tempfile.mkdtemp(prefix="ocrbatch-out-"))

    def hand_on(path: Path) -> None:
        upload(str(path), join_url(target, path.relative_to(staging).as_posix()), options)
        path.unlink()

    try:
        with publishing(hand_on):
            yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_files(
    st: Store,
    job_id: int,
    cfg: RunConfig,
    formats: Sequence[str],
    out_dir: Path,
    partial: bool,
    documents: Collection[int] | None = None,
) -> dict[str, Any]:
    # Scores and review flags go into the pages' info first, so the results carry them.
    evaluation = evaluate_job(st, job_id, ground_truth_rules(cfg), cfg.min_confidence)
    result = export_all(
        formats,
        lambda: st.iter_documents(job_id),
        out_dir,
        ExportOptions(
            password=cfg.password,
            max_pixels=cfg.max_pixels,
            storage_options=cfg.storage_options,
        ),
        each=None if documents is None else lambda: st.iter_documents(job_id, ids=documents),
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
