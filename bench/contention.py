"""How much two single-threaded Tesseracts slow each other on this machine, without a pool.

bench/throughput.py's limit is workers / (single-process s/page): it assumes that N
engines on N cores each run as fast as one alone. This measures that assumption: the same
pages read by one process alone, then by two independent processes at once (no pool, no
coordinator, no store), then by one alone again; it prints each process's CPU seconds per
page and the slowdown. A pool cannot beat this slowdown; its ratio to the limit is at best
about 1 / slowdown.

Usage: python bench/contention.py [--sources oldbooks,docbank] [--preprocess off]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import pages

_READER = r"""
import json, sys
from ocrbatch.model import PageTask
from ocrbatch.pipeline import WorkerSpec, init_worker, process_page
args = json.loads(sys.argv[1])
init_worker(WorkerSpec(engine="tesseract", preprocess=args["preprocess"], cache_max_mb=0),
            ignore_sigint=False)
cpu = 0.0
for i, path in enumerate(args["paths"]):
    task = PageTask(task_id=i, job_id=0, document_id=i, path=path, page_index=0, attempt=1)
    out = process_page(task)
    assert out.ok, out.error_message
    cpu += out.cpu_time
print(json.dumps({"cpu_per_page": cpu / len(args["paths"])}))
"""


def readers(n: int, arg: str) -> list[float]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _READER, arg],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(n)
    ]
    return [float(json.loads(p.communicate()[0])["cpu_per_page"]) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sources", default="oldbooks,docbank")
    ap.add_argument("--preprocess", default="off")
    args = ap.parse_args()
    paths = [str(p.image) for p in pages(tuple(args.sources.split(",")))]
    arg = json.dumps({"paths": paths, "preprocess": args.preprocess})
    # alone, both at once, alone again: the two alone runs bracket the host's drift
    first = readers(1, arg)
    pair = readers(2, arg)
    alone = first + readers(1, arg)
    one = sum(alone) / len(alone)
    two = sum(pair) / len(pair)
    print(f"pages: {len(paths)} ({args.sources}), preprocess {args.preprocess}")
    print(
        f"one process alone: {', '.join(f'{s:.3f}' for s in alone)} CPU s/page (before and after)"
    )
    print(f"two processes at once: {', '.join(f'{s:.3f}' for s in pair)} CPU s/page")
    print(
        f"slowdown {two / one:.3f}x: the best ratio to the limit a 2-worker pool can reach "
        f"here is about {one / two:.3f}"
    )


if __name__ == "__main__":
    main()
