"""Distributed mode (Ray) against the local pool, on the same pages, in one run.

1. Real OCR (Tesseract, fast model): pages/s of the local pool with W workers, then of
   distributed mode with W Ray actors on the same pages, and the ratio (1.0: Ray costs
   nothing; below: its overhead per page).
2. The null engine (FakeEngine, read_image=false: no decoding, no OCR) through Ray and
   through the local pool: tasks/s through the executor alone (workers up, pipeline
   full: the per-task cost of Ray actors vs pebble), and as a whole job (with the store).

Ray is started once before the timed runs (its start-up is printed apart); actors and
pool workers start inside the timed runs, as they do for a user.

Usage: python bench/distributed.py [--workers N] [--pages N] [--null-tasks N]
                                    [--ray-address auto|ray://...] [--sources a,b]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ocrbatch
from corpus import SOURCES, pages
from ocrbatch.executors.base import available_cores


def run(
    mode: str, workers: int, inputs: list[str], tmp: Path, tag: str, n: int, **cfg: Any
) -> dict[str, Any]:
    t0 = time.perf_counter()
    summary = ocrbatch.run(
        inputs,
        tmp / f"out-{tag}",
        db=f"sqlite:///{tmp / 'bench.db'}",
        force=True,
        config={"mode": mode, "workers": workers, "timeout": 600, **cfg},
    )
    summary["wall_s"] = time.perf_counter() - t0
    assert summary["pages"]["completed"] == n, summary["pages"]
    return summary


def executor_rate(ex: Any, n: int) -> float:
    """Null tasks/s through an executor alone (no store, no discovery): a warm-up round
    brings every worker up before the clock starts; the pipeline is kept full."""
    from ocrbatch.model import PageTask
    from ocrbatch.pipeline import WorkerSpec

    def pump(first: int, count: int) -> None:
        sent = done = 0
        while done < count:
            while sent < count and ex.capacity() > 0:
                i = first + sent
                ex.submit(PageTask(i, 1, i, f"/null/{i}.png", 0, 1))
                sent += 1
            done += len(ex.collect(0.2))

    ex.start(WorkerSpec(engine="fake", engine_options={"read_image": False}))
    try:
        deadline = time.monotonic() + 120
        while getattr(ex, "queue_depth", 0) and ex.capacity() < ex.workers * ex.queue_depth:
            assert time.monotonic() < deadline, "workers did not start"
            ex.collect(0.2)  # Ray actors come up one by one
        pump(0, ex.workers * 8)
        t0 = time.perf_counter()
        pump(10**6, n)
        return n / (time.perf_counter() - t0)
    finally:
        ex.close()


def null_inputs(tmp: Path, n: int) -> list[str]:
    """n distinct tiny images: the null engine never decodes them (discovery does count
    their frames and hash them, outside the timed page loop's throughput)."""
    from PIL import Image, PngImagePlugin

    folder = tmp / "null"
    folder.mkdir()
    for i in range(n):
        info = PngImagePlugin.PngInfo()
        info.add_text("n", str(i))  # distinct content: no result is reused across tasks
        Image.new("L", (8, 8), 255).save(folder / f"t{i:06}.png", pnginfo=info)
    return [str(folder)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=available_cores())
    ap.add_argument("--pages", type=int, default=0, help="first N corpus pages (0: all)")
    ap.add_argument("--null-tasks", type=int, default=2000)
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"))
    args = ap.parse_args()
    corpus = pages(tuple(args.sources.split(",")))
    inputs = [str(p.image) for p in (corpus[: args.pages] if args.pages else corpus)]

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not args.ray_address:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
    import ray

    t0 = time.perf_counter()
    if args.ray_address:
        ray.init(address=args.ray_address, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=args.workers, include_dashboard=False,
                 log_to_driver=False)  # fmt: skip
    ray_start = time.perf_counter() - t0
    w = args.workers
    try:
        with tempfile.TemporaryDirectory(prefix="ocrbatch-bench-dist-") as d:
            tmp = Path(d)
            n = len(inputs)
            local = run("parallel", w, inputs, tmp, "local", n)
            dist = run("distributed", w, inputs, tmp, "ray", n, ray_address=args.ray_address)
            nulls = null_inputs(tmp, args.null_tasks)
            null_opts = {"engine": "fake", "engine_options": {"read_image": False}}
            k = args.null_tasks
            null_ray = run("distributed", w, nulls, tmp, "null-ray", k, **null_opts)
            null_local = run("parallel", w, nulls, tmp, "null-local", k, **null_opts)
            from ocrbatch.executors.local import LocalExecutor
            from ocrbatch.executors.ray import RayExecutor

            ray_rate = executor_rate(RayExecutor(w, timeout=60), k)
            pool_rate = executor_rate(LocalExecutor(w, timeout=60, recycle_after=0), k)
    finally:
        ray.shutdown()

    lp, dp = local["throughput_pages_per_s"], dist["throughput_pages_per_s"]
    where = args.ray_address or "local instance"
    print(f"pages: {len(inputs)}   engine: tesseract fast   workers: {w}   ray: {where}")
    print(f"Ray connected/started in {ray_start:.1f} s (not in the timed runs)")
    print("| run | pages/s | s/page engine | wall s (incl. discovery, exports) |")
    print("| --- | --- | --- | --- |")
    for name, s in (("local pool", local), ("distributed (Ray)", dist)):
        print(
            f"| {name} | {s['throughput_pages_per_s']:.3f} | "
            f"{s['processing_time_per_page_s']:.3f} | {s['wall_s']:.1f} |"
        )
    print(f"distributed / local pages/s ratio: {dp / lp:.3f}")
    print(f"\nnull engine, {args.null_tasks} tasks, {w} workers:")
    for name, s, rate in (
        ("Ray actors", null_ray, ray_rate),
        ("local pool", null_local, pool_rate),
    ):
        print(
            f"  {name}: {rate:.0f} tasks/s through the executor alone (workers up); "
            f"{s['throughput_pages_per_s']:.0f} tasks/s as a job (store, worker start-up; "
            f"wall {s['wall_s']:.1f} s incl. discovery and exports)"
        )
    print(f"  Ray / local pool, executor alone: {ray_rate / pool_rate:.3f}")


if __name__ == "__main__":
    main()
