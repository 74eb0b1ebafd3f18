"""A standing job: ``ocrbatch watch SOURCE --out DEST`` OCRs whatever lands in a folder
or bucket prefix, with the usual supervision, and writes its outputs as it goes.

A file is taken in once it has settled: the same stamp (size and modification time; an
object's ETag and size) for ``settle`` seconds, so a file still being written is never
read. The store records what was taken in (each document's path and stamp, in the same
transaction as its pages), so a restart after Ctrl-C or a crash takes in exactly the
files it has not seen (those that arrived while it was down too) and none twice; a file
that changes later is taken in again, as a new document beside the first (outputs are
never overwritten). The job is found again by its source and output; its options are
the ones it was created with.

The loop is the scheduler's, with a :class:`Arrivals` feed: it lists the source every
few seconds, adds the settled files, writes the files of the documents done (their own
files once; results.jsonl and summary.json rewritten, never more than a tenth of the
time), and moves done inputs to ``--done-prefix`` when asked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any

import structlog

from .config import RunConfig, cli_fields
from .discovery import DiscoveryOptions, describe, local_stamp
from .errors import ConfigError, JobStateError, OcrbatchError
from .executors import Executor, available_cores, preflight, refuse_in_worker_startup
from .inputs import Candidate, iter_paths, place
from .intake import create_job, make_config, out_root, own_paths
from .model import JobStatus
from .outputs import cli_hint, write_outputs
from .progress import Reporter
from .scheduler import Control, Scheduler, install_signal_handlers, restore_signal_handlers
from .service import executor_for
from .session import JobSession, claim_job_for_run, job_config, owner_id
from .status import open_store
from .store import JobInfo, Store
from .tools.storage import filesystem, is_url, join_url, with_retries

__all__ = ["Arrivals", "watch"]

log = structlog.get_logger("ocrbatch.watch")

_BATCH = 500  # candidates looked up in the store at once
# What a job is (a restart must not change it) and where it runs (a restart may).
_RUN_FIELDS = tuple(cli_fields("worker"))
_JOB_FIELDS = tuple(n for n in RunConfig.model_fields if n not in _RUN_FIELDS and n != "password")


def watch(
    source: str,
    out: str | os.PathLike[str] | None = None,
    *,
    settle: float = 10.0,
    done_prefix: str | None = None,
    db: str | None = None,
    name: str | None = None,
    config: RunConfig | dict[str, Any] | None = None,
    reporter: Reporter | None = None,
    handle_signals: bool = False,
    make_executor: Callable[[RunConfig], Executor] = executor_for,
    **options: Any,
) -> dict[str, Any]:
    """Watch ``source`` (a folder or a bucket prefix) and OCR each file that settles
    there into ``out``, until stopped (Ctrl-C, SIGTERM with ``handle_signals``;
    ``ocrbatch pause`` or ``cancel``); returns the summary as of the stop. Run again with
    the same source and output, it continues the same job."""
    refuse_in_worker_startup("ocrbatch.watch()")
    if settle < 0:
        raise ConfigError(f"--settle: must be 0 or more (given: {settle})")
    cfg = make_config(config, **options)
    preflight(cfg.mode)
    settings = {"source": source, "settle": settle, "done_prefix": done_prefix}
    with open_store(db) as st:
        job = standing_job(st, source, out, cfg, settings, name)
        job = claim_job_for_run(st, job)
        # What the job is, as stored; where it runs, as asked now.
        cfg = job_config(job).model_copy(update={k: getattr(cfg, k) for k in _RUN_FIELDS})
        threads = available_cores() if cfg.mode == "sequential" else 1
        session = JobSession(st, job, owner_id(), threads=threads, reporter=reporter)
        feed = Arrivals(st, job, settle=settle, done_prefix=done_prefix)
        control = Control()
        old = install_signal_handlers(control) if handle_signals else {}
        try:
            status = Scheduler(session, make_executor(cfg), control=control, feed=feed).run()
        finally:
            restore_signal_handlers(old)
        summary = feed.write(final=True)
        summary["status"] = str(status)
        return summary


def standing_job(
    st: Store,
    source: str,
    out: str | os.PathLike[str] | None,
    cfg: RunConfig,
    settings: dict[str, Any],
    name: str | None,
) -> JobInfo:
    """The standing job of ``source`` into ``out`` (created the first time): found by
    its source and output folder; its options are the ones it was made with (options
    left at their defaults now take the job's; other ones are refused rather than mixed
    into it)."""
    target = os.fspath(out) if out else None
    for job in st.standing_jobs():
        same_out = target is None or place(job.output_path or "") == place(target)
        if place(str((job.watch or {}).get("source", ""))) == place(source) and same_out:
            if job.status == JobStatus.CANCELLED:
                continue
            # Options left at their defaults are the job's own; others must agree.
            fields = set(_JOB_FIELDS)  # compared as stored (JSON: tuples are lists there)
            default = make_config().model_dump(mode="json", include=fields)
            given = cfg.model_dump(mode="json", include=fields)
            stored = job_config(job).model_dump(mode="json", include=fields)
            changed = sorted(k for k in given if given[k] not in (default[k], stored[k]))
            if changed:
                names = ", ".join(f"--{k.replace('_', '-')}" for k in changed)
                raise JobStateError(
                    f"job {job.id} watches {source} with other options ({names}): give the "
                    f"same ones, or `{cli_hint('cancel', job.id, st.url)}` first"
                )
            st.set_watch(job.id, settings)
            return st.get_job(job.id)
    return create_job(st, [source], target, cfg, name=name, watch=settings)


class Arrivals:
    """The feed of a standing job (see the module docstring): what arrived and settled
    is added to the store, what is done gets its files."""

    def __init__(self, st: Store, job: JobInfo, *, settle: float, done_prefix: str | None) -> None:
        self.store, self.job_id = st, job.id
        self.cfg = job_config(job)
        self.source = str((job.watch or {})["source"])
        self.settle = settle
        self.done_prefix = done_prefix
        own = own_paths(st, self.cfg, out_root(job), [self.source])
        if done_prefix:
            own += ((place(done_prefix), "the done prefix"),)
        self.options = DiscoveryOptions(
            dpi=self.cfg.dpi,
            max_pixels=self.cfg.max_pixels,
            password=self.cfg.password,
            pages=self.cfg.pages,
            exclude=own,
            storage_options=self.cfg.storage_options,
        )
        self.max_retries = self.cfg.max_retries if job.max_retries is None else job.max_retries
        self.reuse = not job.force
        self.pending: dict[str, tuple[str | None, float]] = {}  # path -> (stamp, since)
        # Listing every few seconds, at most half the settle time apart.
        self.every = max(0.2, min(settle / 2, 5.0))
        self._listed = -float("inf")
        # Documents done since this have no files yet: at the start, all of them (a crash
        # may have come between a document's end and its files).
        self._since = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        self._written = time.monotonic()
        self._write_took = 0.0
        self._unwritten = False

    # -- the loop's hook ---------------------------------------------------------------
    def poll(self, now: float) -> bool:
        added = 0
        if now - self._listed >= self.every:
            t = time.monotonic()
            added = self._take_in(now)
            self._listed = now + (time.monotonic() - t)  # a slow listing spaces them out
        if now - self._written >= max(2.0, 10 * self._write_took):
            self.write()
        return added > 0

    def write(self, *, final: bool = False) -> dict[str, Any]:
        """Write the files of the documents done since the last call (and results.jsonl,
        summary.json...), when there are any, or always when ``final``."""
        mark = dt.datetime.now(dt.UTC)
        done = self.store.finished_since(self.job_id, self._since)
        if not done and not final and not self._unwritten:
            self._written = time.monotonic()
            return {}
        t = time.monotonic()
        try:
            summary = write_outputs(self.store, self.job_id, self.cfg, documents=done)
        except OcrbatchError as exc:
            if final:
                raise
            log.warning("outputs_not_written", job=self.job_id, error=exc.message)
            self._unwritten = True
            self._written = time.monotonic()
            return {}
        # Outcomes are recorded by this loop's own thread (completed_at from this
        # process's clock), so none ends while this runs; the second of overlap only
        # writes some files twice, whole each time.
        self._since = mark - dt.timedelta(seconds=1)
        self._unwritten = False
        self._write_took = time.monotonic() - t
        self._written = time.monotonic()
        if self.done_prefix and done:
            self._move_done(done)
        return summary

    # -- taking files in -----------------------------------------------------------------
    def _take_in(self, now: float) -> int:
        seen: set[str] = set()
        added = 0
        found = iter_paths([self.source], self.options.exclude, self.options.storage_options)
        for batch in _batches(found, _BATCH):
            stamped = [(c, _stamp(c)) for c in batch]
            known = self.store.known_stamps(self.job_id, [c.path for c, _ in stamped])
            ready: list[tuple[Candidate, str | None]] = []
            for c, stamp in stamped:
                seen.add(c.path)
                if (c.path, stamp) in known:
                    self.pending.pop(c.path, None)
                    continue
                first = self.pending.get(c.path)
                if c.error is None and (first is None or first[0] != stamp):
                    self.pending[c.path] = (stamp, now)  # new, or changed since: settling
                elif c.error is not None or now - first[1] >= self.settle:  # type: ignore[index]
                    ready.append((c, stamp))
            added += self._add(ready, now)
        for path in [p for p in self.pending if p not in seen]:
            del self.pending[path]  # gone before it settled
        return added

    def _add(self, ready: list[tuple[Candidate, str | None]], now: float) -> int:
        """Describe the settled files and store them; a local file that changed since it
        settled (or while it was read) goes back to settling instead."""
        if not ready:
            return 0
        settled = {c.path: stamp for c, stamp in ready}
        docs = []
        for d in describe([c for c, _ in ready], self.options):
            if d.error is None and not is_url(d.path):
                after = _stamp(Candidate(d.path, ""))
                if not d.stamp == after == settled[d.path]:
                    self.pending[d.path] = (after, now)
                    continue
            self.pending.pop(d.path, None)
            docs.append(d)
        n, reused = self.store.add_documents(
            self.job_id, docs, max_retries=self.max_retries, reuse=self.reuse
        )
        if n:
            log.info("taken_in", job=self.job_id, documents=n, reused=reused)
        return n

    def _move_done(self, ids: Sequence[int]) -> None:
        """Completed inputs go to the done prefix, under their rel path (best effort: a
        file that cannot be moved stays, logged)."""
        assert self.done_prefix is not None
        for d in self.store.iter_documents(self.job_id, ids=ids):
            if d["status"] != "completed" or d["reused_from"]:
                continue
            src, rel = str(d["path"]), str(d["rel_path"])
            try:
                if is_url(src):
                    _move_object(src, join_url(self.done_prefix, rel), self.cfg.storage_options)
                else:
                    dest = os.path.join(self.done_prefix, rel)
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    os.replace(src, dest)
            except (OSError, OcrbatchError) as exc:
                log.warning("not_moved", path=src, error=str(exc))


def _move_object(src: str, dest: str, options: Any) -> None:
    fs = filesystem(src, options)
    with_retries(lambda: fs.mv(src, dest), src)


def _stamp(c: Candidate) -> str | None:
    if c.stamp is not None or c.error is not None:
        return c.stamp
    with contextlib.suppress(OSError):
        return local_stamp(os.stat(c.path))
    return None


def _batches(items: Iterator[Candidate], n: int) -> Iterator[list[Candidate]]:
    while batch := list(islice(items, n)):
        yield batch
