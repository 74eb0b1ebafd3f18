"""Job callbacks and their webhook deliveries.

An event is queued in the same transaction that changes the job's status (whatever
process changes it: the service, a queue worker on another machine, ``ocrbatch
pause``), so none is lost or queued twice; the service's sender claims due deliveries
with a lease (so two service processes never send the same one at once) and records
each attempt's outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from .common import StoreParts, utcnow
from .tables import api_tokens, job_webhooks, jobs, webhook_deliveries

__all__ = ["EVENTS", "Delivery", "WebhookOps", "queue_event"]

EVENTS = ("completed", "failed", "paused", "cancelled")
_CLAIM_SECONDS = 60.0  # a claimed delivery is tried again after this if its sender died


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook delivery to send: where, what, and the secret that signs it."""

    id: int
    job_id: int
    event: str
    url: str
    payload: dict[str, Any]
    attempts: int
    secret: str | None


def queue_event(c: Connection, job_id: int, status: str) -> None:
    """In the caller's transaction: the job became ``status``; queue a delivery if the
    job has a callback and the status is an event."""
    if status not in EVENTS:
        return
    hook = c.execute(select(job_webhooks.c.url).where(job_webhooks.c.job_id == job_id)).first()
    if hook is None:
        return
    row = c.execute(select(jobs).where(jobs.c.id == job_id)).mappings().one()
    now = utcnow()
    payload = {
        "event": status,
        "job": job_id,
        "name": row["name"],
        "status": status,
        "at": now.isoformat(),
        "pages_done": row["processed_pages"],
        "pages_failed": row["failed_pages"],
        "pages_total": row["total_pages"],
        "documents_done": row["processed_documents"],
        "documents_failed": row["failed_documents"],
        "documents_total": row["total_documents"],
        "output_path": row["output_path"],
    }
    c.execute(
        insert(webhook_deliveries).values(
            job_id=job_id,
            event=status,
            url=hook[0],
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


class WebhookOps(StoreParts):
    """Callbacks and deliveries of :class:`~ocrbatch.store.Store` (a mixin)."""

    def set_callback(self, job_id: int, url: str, token_id: int | None) -> None:
        """The job's events go to ``url``, signed with the token's secret."""
        with self._begin() as c:
            c.execute(insert(job_webhooks).values(job_id=job_id, url=url, token_id=token_id))

    def callback_of(self, job_id: int) -> str | None:
        with self._read() as c:
            q = select(job_webhooks.c.url).where(job_webhooks.c.job_id == job_id)
            url = c.execute(q).scalar()
            return None if url is None else str(url)

    def claim_deliveries(self, limit: int = 20) -> list[Delivery]:
        """Due deliveries, each claimed for a minute (a conditional update per row, so
        of two senders exactly one gets it)."""
        now = utcnow()
        until = now + dt.timedelta(seconds=_CLAIM_SECONDS)
        out: list[Delivery] = []
        with self._begin() as c:
            q = (
                select(webhook_deliveries, api_tokens.c.webhook_secret)
                .select_from(
                    webhook_deliveries.outerjoin(
                        job_webhooks, job_webhooks.c.job_id == webhook_deliveries.c.job_id
                    ).outerjoin(api_tokens, api_tokens.c.id == job_webhooks.c.token_id)
                )
                .where(
                    webhook_deliveries.c.status == "pending",
                    webhook_deliveries.c.next_attempt_at <= now,
                )
                .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
                .limit(limit)
            )
            for r in c.execute(q).mappings().all():
                res = c.execute(
                    update(webhook_deliveries)
                    .where(
                        webhook_deliveries.c.id == r["id"],
                        webhook_deliveries.c.status == "pending",
                        webhook_deliveries.c.next_attempt_at == r["next_attempt_at"],
                    )
                    .values(next_attempt_at=until, attempts=webhook_deliveries.c.attempts + 1)
                )
                if res.rowcount:
                    out.append(
                        Delivery(
                            id=r["id"],
                            job_id=r["job_id"],
                            event=r["event"],
                            url=r["url"],
                            payload=dict(r["payload"]),
                            attempts=int(r["attempts"]) + 1,
                            secret=r["webhook_secret"],
                        )
                    )
        return out

    def record_delivery(
        self,
        delivery_id: int,
        *,
        ok: bool,
        status_code: int | None,
        error: str | None,
        retry_in: float | None,
    ) -> None:
        """One attempt's outcome: delivered; or tried again in ``retry_in`` seconds; or
        (``retry_in`` None) given up."""
        now = utcnow()
        values: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
        if ok:
            values.update(status="delivered", delivered_at=now)
        elif retry_in is None:
            values.update(status="failed")
        else:
            values.update(next_attempt_at=now + dt.timedelta(seconds=retry_in))
        with self._begin() as c:
            c.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.status == "pending",
                )
                .values(**values)
            )

    def deliveries(self, job_id: int, limit: int = 100) -> list[dict[str, Any]]:
        """The job's deliveries, newest first."""
        with self._read() as c:
            q = (
                select(webhook_deliveries)
                .where(webhook_deliveries.c.job_id == job_id)
                .order_by(webhook_deliveries.c.id.desc())
                .limit(limit)
            )
            return [dict(r) for r in c.execute(q).mappings()]

    def pending_deliveries(self, job_ids: Sequence[int] | None = None) -> int:
        """Deliveries not sent yet (all, or of these jobs)."""
        from sqlalchemy import func

        q = select(func.count()).where(webhook_deliveries.c.status == "pending")
        if job_ids is not None:
            q = q.where(webhook_deliveries.c.job_id.in_(list(job_ids)))
        with self._read() as c:
            return int(c.execute(q).scalar_one())
