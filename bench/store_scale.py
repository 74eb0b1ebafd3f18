"""The store's cost per call on a big job: page claims, outcome records, lease renewals
and the queue's demand query, with N pending pages in one job, on PostgreSQL or SQLite.

These are the calls a coordinator makes for every batch of pages (docs/scaling.md, "what
breaks first"); each is timed many times on the full table and the median is printed
with the rate it allows one coordinator.

Usage: python bench/store_scale.py [--db URL] [--pages 1000000] [--calls 50]
       (--db default: $OCRBATCH_TEST_PG_URL, else a SQLite file in a temporary folder;
        `eval "$(.ci/postgres.sh start)"` starts a throwaway PostgreSQL)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ocrbatch.model import DocumentRef, PageOutcome, PageTask
from ocrbatch.retry import RetryPolicy
from ocrbatch.store import Store

CLAIM, RECORD = 16, 64


def _median_ms(fn: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def _ok(t: PageTask) -> PageOutcome:
    page = {"text": "x" * 2000, "conf": 0.9, "width": 2480, "height": 3508, "blocks": []}
    return PageOutcome(t.task_id, t.attempt, True, page=page, processing_time=1.5, cpu_time=1.5)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", default=os.environ.get("OCRBATCH_TEST_PG_URL"))
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrbatch-bench-store-") as d:
        url = args.db or f"sqlite:///{d}/scale.db"
        st = Store(url)
        job = st.create_job(
            name=f"scale-{time.time():.0f}",
            config={},
            result_key=f"bench-{time.time()}",
            inputs=["bench"],
            mode="parallel",
            max_retries=2,
            queue=f"bench-{os.getpid()}",
        )
        t0 = time.perf_counter()
        batch = 20_000
        for start in range(0, args.pages, batch):
            docs = [
                DocumentRef(f"/in/{i}.png", f"{i}.png", 200_000, f"h{job}-{i}", weight=i % 997)
                for i in range(start, min(args.pages, start + batch))
            ]
            st.add_documents(job, docs, max_retries=2, reuse=False)
        st.update_job(job, discovery_done=True)
        added = time.perf_counter() - t0
        backend = url.split(":", 1)[0]
        print(f"store: {backend}   pages pending in the job: {args.pages:,}")
        print(f"stored in {added:.1f} s ({args.pages / added:,.0f} pages/s, batches of {batch:,})")
        policy = RetryPolicy(max_retries=2, backoff=0.0, jitter=0.0)
        held: list[PageTask] = []

        def claim() -> None:
            held.extend(st.claim(job, CLAIM, "bench"))

        claim_ms = _median_ms(claim, args.calls)
        while len(held) < RECORD * args.calls:
            held.extend(st.claim(job, 256, "bench"))
        ids = [t.task_id for t in held[:RECORD]]
        renew_ms = _median_ms(lambda: st.renew(ids, "bench"), args.calls)
        chunks = iter([held[i : i + RECORD] for i in range(0, len(held), RECORD)])
        record_ms = _median_ms(
            lambda: st.record(job, [_ok(t) for t in next(chunks)], policy), args.calls
        )
        queue = st.get_job(job).queue or ""
        demand_ms = _median_ms(lambda: st.queue_demand(queue), args.calls)
        st.close()
    print("| call | median ms | per coordinator |")
    print("| --- | --- | --- |")
    print(f"| claim {CLAIM} pages | {claim_ms:.2f} | {1000 * CLAIM / claim_ms:,.0f} pages/s |")
    print(
        f"| record {RECORD} outcomes | {record_ms:.2f} | {1000 * RECORD / record_ms:,.0f} pages/s |"
    )
    print(f"| renew {RECORD} leases | {renew_ms:.2f} | |")
    print(f"| queue demand | {demand_ms:.2f} | {1000 / demand_ms:,.0f} per s |")


if __name__ == "__main__":
    main()
