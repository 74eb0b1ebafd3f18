"""Prometheus metrics at /metrics, read from the store at each scrape, so they count
the work of every coordinator on the queue (the embedded worker and `ocrbatch worker`
processes elsewhere), not only this process's.

The figures of a job that has ended do not change: they are read once and kept; only
active jobs are read again at each scrape (and a scrape within a second of the last
one is answered from memory)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .context import ENDED, ServiceContext

__all__ = ["LATENCY_BUCKETS", "StoreCollector", "metrics_payload"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
JOB_BUCKETS = (10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
_ACTIVE = ("pending", "running")


class StoreCollector(Collector):
    """The service's metrics, from the store."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._ended: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def _pages(self, job: dict[str, Any]) -> dict[str, Any]:
        key = (job["status"], job["processed_pages"], job["failed_pages"])
        hit = self._ended.get(job["id"])
        if hit is not None and hit[0] == key:
            return hit[1]
        figures = self.ctx.store.page_figures(job["id"], LATENCY_BUCKETS)
        if job["status"] in ENDED:
            self._ended[job["id"]] = (key, figures)
        return figures

    def collect(self) -> Iterator[Metric]:
        st = self.ctx.store
        jobs = st.job_figures()
        done = CounterMetricFamily(
            "ocrbatch_pages_done", "Pages OCRed (completed)", labels=["engine"]
        )
        failed = CounterMetricFamily(
            "ocrbatch_pages_failed",
            "Pages failed for good, by engine and reason",
            labels=["engine", "reason"],
        )
        retries = CounterMetricFamily("ocrbatch_page_retries", "Page retries", labels=["engine"])
        by_engine: dict[str, dict[str, Any]] = {}
        for j in jobs:
            if not j["total_pages"]:
                continue
            p = self._pages(j)
            e = by_engine.setdefault(
                j["engine"],
                {
                    "done": 0,
                    "failed": {},
                    "retries": 0,
                    "sum": 0.0,
                    "buckets": [0] * len(LATENCY_BUCKETS),
                },
            )
            e["done"] += p["completed"]
            e["retries"] += p["retries"]
            e["sum"] += p["latency_sum"]
            e["buckets"] = [a + b for a, b in zip(e["buckets"], p["latency_buckets"], strict=True)]
            for kind, n in p["failed"].items():
                e["failed"][kind] = e["failed"].get(kind, 0) + n
        latency = HistogramMetricFamily(
            "ocrbatch_page_latency_seconds",
            "Seconds per completed page in its worker",
            labels=["engine"],
        )
        for engine, e in sorted(by_engine.items()):
            done.add_metric([engine], e["done"])
            retries.add_metric([engine], e["retries"])
            for kind, n in sorted(e["failed"].items()):
                failed.add_metric([engine, kind], n)
            buckets = [
                (str(b), float(n)) for b, n in zip(LATENCY_BUCKETS, e["buckets"], strict=True)
            ]
            buckets.append(("+Inf", float(e["done"])))
            latency.add_metric([engine], buckets, e["sum"])
        yield from (done, failed, retries, latency)

        depth = GaugeMetricFamily(
            "ocrbatch_queue_depth_pages",
            "Pages not finished of the queue's active jobs, per queue and priority",
            labels=["queue", "priority"],
        )
        jobs_by = GaugeMetricFamily("ocrbatch_jobs", "Jobs by status", labels=["status"])
        queued: dict[tuple[str, int], int] = {}
        counts: dict[str, int] = {}
        durations: list[float] = []
        for j in jobs:
            counts[j["status"]] = counts.get(j["status"], 0) + 1
            if j["queue"] and j["status"] in _ACTIVE:
                k = (j["queue"], int(j["priority"]))
                queued[k] = queued.get(k, 0) + max(0, j["total_pages"] - j["processed_pages"])
            if j["status"] in ENDED:
                durations.append(float(j["run_seconds"] or 0.0))
        for (q, prio), n in sorted(queued.items()):
            depth.add_metric([q, str(prio)], n)
        for status, n in sorted(counts.items()):
            jobs_by.add_metric([status], n)
        yield from (depth, jobs_by)

        hist = HistogramMetricFamily("ocrbatch_job_duration_seconds", "Run time of ended jobs")
        cum = [(str(b), float(sum(d <= b for d in durations))) for b in JOB_BUCKETS]
        cum.append(("+Inf", float(len(durations))))
        hist.add_metric([], cum, sum(durations))
        yield hist

        running = GaugeMetricFamily(
            "ocrbatch_pages_running", "Pages running now over every coordinator (live leases)"
        )
        running.add_metric([], st.running_pages())
        yield running
        workers = GaugeMetricFamily(
            "ocrbatch_workers", "Worker slots of the embedded worker", labels=["state"]
        )
        w = self.ctx.worker
        if w is not None and w.alive():
            busy = min(w.slots, st.running_pages(w.owner))
            workers.add_metric(["busy"], busy)
            workers.add_metric(["idle"], w.slots - busy)
        yield workers
        pending = GaugeMetricFamily("ocrbatch_webhooks_pending", "Webhook deliveries not sent yet")
        pending.add_metric([], st.pending_deliveries())
        yield pending


class _Cache:
    def __init__(self) -> None:
        self.at = 0.0
        self.body = b""
        self.lock = threading.Lock()


def metrics_payload(registry: CollectorRegistry, cache: _Cache | None = None) -> bytes:
    """The exposition text (answered from memory within a second of the last scrape)."""
    if cache is None:
        return generate_latest(registry)
    with cache.lock:
        now = time.monotonic()
        if now - cache.at > 1.0:
            cache.body = generate_latest(registry)
            cache.at = now
        return cache.body


def make_registry(ctx: ServiceContext) -> tuple[CollectorRegistry, _Cache]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(ctx))
    return registry, _Cache()
