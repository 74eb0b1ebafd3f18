"""Documents in the store: a discovered batch in one transaction, reuse by content hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import posixpath
from collections.abc import Iterator, Sequence

from sqlalchemy import (
    Connection,
    func,
    insert,
    literal,
    select,
    update,
)

from ..model import (
    DocumentRef,
    DocumentStatus,
    TaskStatus,
)
from .common import StoreParts, refresh_progress, utcnow
from .tables import EPOCH, documents, jobs, tasks

__all__ = ["DocumentOps"]


class DocumentOps(StoreParts):
    """Document rows of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def known_paths(self, job_id: int, paths: Sequence[str]) -> set[str]:
        """Which of ``paths`` the job already has (discovery resumed after a crash)."""
        if not paths:
            return set()
        with self._read() as c:
            rows = c.execute(
                select(documents.c.path).where(
                    documents.c.job_id == job_id, documents.c.path.in_(paths)
                )
            )
            return {r[0] for r in rows}

    def known_stamps(self, job_id: int, paths: Sequence[str]) -> set[tuple[str, str | None]]:
        """(path, stamp) of the job's documents at ``paths``: a watched file whose stamp
        is among them was taken in already (a changed one has a new stamp)."""
        if not paths:
            return set()
        with self._read() as c:
            rows = c.execute(
                select(documents.c.path, documents.c.source_stamp).where(
                    documents.c.job_id == job_id, documents.c.path.in_(paths)
                )
            )
            return {(r[0], r[1]) for r in rows}

    def add_documents(
        self,
        job_id: int,
        docs: Sequence[DocumentRef],
        *,
        max_retries: int,
        reuse: bool = True,
    ) -> tuple[int, int]:
        """Store a batch of discovered documents and their page tasks in one transaction.

        With ``reuse``, a document whose content hash was already completed under the same
        result key (same engine and options) takes that result instead of a new OCR.
        Returns (documents added, documents reused).
        """
        if not docs:
            return 0, 0
        now = utcnow()
        with self._begin() as c:
            key = c.execute(select(jobs.c.result_key).where(jobs.c.id == job_id)).scalar_one()
            previous: dict[str, int] = {}
            hashes = [d.content_hash for d in docs if d.content_hash and not d.error]
            if reuse and hashes:
                q = (
                    select(documents.c.content_hash, func.max(documents.c.id))
                    .where(
                        documents.c.result_key == key,
                        documents.c.content_hash.in_(hashes),
                        documents.c.status == DocumentStatus.COMPLETED,
                        documents.c.job_id != job_id,
                    )
                    .group_by(documents.c.content_hash)
                )
                previous = {h: i for h, i in c.execute(q)}
            rels = self._unique_rel_paths(c, job_id, docs)
            rows = []
            for d, rel in zip(docs, rels, strict=True):
                old = previous.get(d.content_hash or "") if not d.error else None
                status = (
                    DocumentStatus.FAILED
                    if d.error
                    else DocumentStatus.COMPLETED
                    if old
                    else DocumentStatus.PENDING
                )
                rows.append(
                    dict(
                        job_id=job_id,
                        path=d.path,
                        rel_path=rel,
                        file_size=d.size,
                        content_hash=d.content_hash,
                        source_stamp=d.stamp,
                        result_key=key,
                        page_count=0 if d.error else len(d.page_tasks()),
                        status=status,
                        error_message=d.error,
                        reused_from=old,
                        created_at=now,
                        completed_at=now if (d.error or old) else None,
                    )
                )
            ids = (
                c.execute(
                    insert(documents).returning(documents.c.id, sort_by_parameter_order=True), rows
                )
                .scalars()
                .all()
            )
            task_rows = []
            reused = failed = 0
            reused_pages = 0
            total_pages = 0
            for doc_id, d, r in zip(ids, docs, rows, strict=True):
                if d.error:
                    failed += 1
                    continue
                if r["reused_from"]:
                    reused += 1
                    reused_pages += self._copy_pages(c, job_id, doc_id, r["reused_from"], now)
                    continue
                page_tasks = d.page_tasks()
                total_pages += len(page_tasks)
                for p, weight in page_tasks:
                    task_rows.append(
                        dict(
                            job_id=job_id,
                            document_id=doc_id,
                            page_index=p,
                            file_path=d.path,
                            status=TaskStatus.PENDING,
                            attempt=0,
                            retry_count=0,
                            max_retries=max_retries,
                            weight=weight,
                            available_at=EPOCH,
                        )
                    )
            if task_rows:
                c.execute(insert(tasks), task_rows)
            c.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    total_documents=jobs.c.total_documents + len(docs),
                    processed_documents=jobs.c.processed_documents + failed + reused,
                    failed_documents=jobs.c.failed_documents + failed,
                    successful_documents=jobs.c.successful_documents + reused,
                    reused_documents=jobs.c.reused_documents + reused,
                    total_pages=jobs.c.total_pages + total_pages + reused_pages,
                    processed_pages=jobs.c.processed_pages + reused_pages,
                    successful_pages=jobs.c.successful_pages + reused_pages,
                    updated_at=now,
                )
            )
            refresh_progress(c, job_id)
        return len(docs), reused

    @staticmethod
    def _unique_rel_paths(c: Connection, job_id: int, docs: Sequence[DocumentRef]) -> list[str]:
        """Each document's rel_path, made unique in the job: it names the document's
        output files (text/, hocr/, alto/, pdf/), so a duplicate would overwrite them.

        Discovery names documents by their input, so this is a safety net: a newcomer
        whose rel_path is taken (by a stored document, or earlier in this batch) gets
        its absolute path without the leading /, else a short hash of its path before
        the extension. Deterministic: a discovery resumed after a crash (which skips the
        stored paths) names the rest exactly as an uninterrupted one would.
        """
        taken = _rel_paths_in_job(c, job_id, {d.rel_path for d in docs})
        rels = []
        for d in docs:
            rel = d.rel_path
            if rel in taken:
                rel = next(
                    alt
                    for alt in _alternatives(d.path, rel)
                    if alt not in taken and not _rel_paths_in_job(c, job_id, {alt})
                )
            taken.add(rel)
            rels.append(rel)
        return rels

    @staticmethod
    def _copy_pages(c: Connection, job_id: int, doc_id: int, old_doc: int, now: dt.datetime) -> int:
        """Copy the completed page rows of ``old_doc`` to ``doc_id``."""
        cols = [
            "page_index",
            "file_path",
            "attempt",
            "retry_count",
            "max_retries",
            "weight",
            "processing_time",
            "cpu_time",
            "result_text",
            "confidence",
            "result_json",
            "info",
            "worker_id",
        ]
        src = select(
            literal(job_id),
            literal(doc_id),
            *[tasks.c[k] for k in cols],
            literal(TaskStatus.COMPLETED.value),
            literal(EPOCH, type_=tasks.c.available_at.type),
            literal(now, type_=tasks.c.completed_at.type),
        ).where(tasks.c.document_id == old_doc)
        res = c.execute(
            insert(tasks).from_select(
                ["job_id", "document_id", *cols, "status", "available_at", "completed_at"], src
            )
        )
        c.execute(
            update(documents)
            .where(documents.c.id == doc_id)
            .values(
                page_count=select(func.count())
                .where(tasks.c.document_id == doc_id)
                .scalar_subquery()
            )
        )
        return int(res.rowcount or 0)


def _rel_paths_in_job(c: Connection, job_id: int, rels: set[str]) -> set[str]:
    """Which of ``rels`` the job's documents already have (ix_documents_job_id_rel_path)."""
    if not rels:
        return set()
    q = select(documents.c.rel_path).where(
        documents.c.job_id == job_id, documents.c.rel_path.in_(sorted(rels))
    )
    return {r[0] for r in c.execute(q)}


def _alternatives(path: str, rel: str) -> Iterator[str]:
    """Other names for the document at ``path`` whose ``rel`` is taken, most readable first."""
    full = path.replace(os.sep, "/").lstrip("/")
    if full and full != rel:
        yield full
    stem, ext = posixpath.splitext(rel)
    tag = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()
    yield f"{stem}~{tag}{ext}"
    for n in itertools.count(2):
        yield f"{stem}~{tag}-{n}{ext}"
