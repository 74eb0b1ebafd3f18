"""The coordinator's own overhead: a null engine (no decoding, no OCR) over N tiny tasks
through the real store (SQLite file), scheduler and executor. Prints tasks/s and the
coordinator's peak RSS for each mode, each measured in a fresh process.

Usage: python bench/overhead.py [--tasks 20000] [--modes sequential,parallel]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(mode: str, tasks: int, tmp: Path) -> dict[str, float]:
    import ocrbatch

    src = tmp / "in"
    if not src.exists():
        src.mkdir()
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("L", (8, 8), 255).save(buf, format="PNG")
        for i in range(tasks):  # tiny valid images: discovery reads their headers
            (src / f"{i:06d}.png").write_bytes(buf.getvalue())
    t0 = time.perf_counter()
    job = ocrbatch.submit(
        [src],
        tmp / f"out-{mode}",
        db=f"sqlite:///{tmp / f'{mode}.db'}",
        config={
            "engine": "fake",
            "mode": mode,
            "workers": 2,
            "engine_options": {"read_image": False},
        },
    )
    t1 = time.perf_counter()
    summary = ocrbatch.resume(job, db=f"sqlite:///{tmp / f'{mode}.db'}")
    t2 = time.perf_counter()
    assert summary["pages"]["completed"] == tasks, summary
    return {
        "tasks": tasks,
        "discovery_s": t1 - t0,
        "run_s": summary["total_time_s"],
        "tasks_per_s": tasks / summary["total_time_s"],
        "end_to_end_s": t2 - t0,
        "exports_s": (t2 - t1) - summary["total_time_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--modes", default="sequential,parallel")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one(args.child, args.tasks, Path(args.tmp))))
        return
    with tempfile.TemporaryDirectory(prefix="ocrbatch-overhead-") as d:
        print(f"null engine, {args.tasks} tasks, SQLite file store, 2 workers for parallel")
        print(
            "| mode | tasks/s (scheduler loop) | discovery s | exports s | end to end s "
            "| coordinator peak RSS MB |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for mode in args.modes.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--tasks", str(args.tasks), "--tmp", d],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {mode} | {r['tasks_per_s']:.0f} | {r['discovery_s']:.1f} | "
                f"{r['exports_s']:.1f} | {r['end_to_end_s']:.1f} | {r['peak_rss_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
