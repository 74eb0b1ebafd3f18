"""Peak memory of one worker, and of the coordinator, on the biggest pages of the corpus.

Each case runs in a fresh process that does exactly what a pool worker does
(init_worker, then process_page for each page, one at a time) and reports its peak RSS
(ru_maxrss) and its RSS after each page. Then a whole parallel job over the same PDFs
reports the coordinator's own peak RSS: it never holds a page image.

Cases: the 9000x9000 px page of multipage.pdf (page 2, rendered at 300 dpi), and the
68-page docbank_arxiv_1807_09084.pdf with --force-ocr (every page rendered and OCRed).
Usage: python bench/memory.py [--long-pages 1-68] [--preprocess auto|off]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CORPUS

_WORKER = r"""
import json, resource, sys, psutil
from ocrbatch.pipeline import WorkerSpec, init_worker, process_page
from ocrbatch.model import PageTask
args = json.loads(sys.argv[1])
init_worker(WorkerSpec(engine="tesseract", timeout=900, force_ocr=True,
                       preprocess=args["preprocess"], cache_max_mb=0), ignore_sigint=False)
proc = psutil.Process()
base = proc.memory_info().rss
rows = []
for i in args["pages"]:
    t = PageTask(task_id=i, job_id=1, document_id=1, path=args["path"], page_index=i, attempt=1)
    out = process_page(t)
    rows.append((i + 1, out.ok, round(out.processing_time, 2), proc.memory_info().rss >> 20))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
print(json.dumps({"after_init_mb": base >> 20, "peak_mb": peak, "pages": rows}))
"""


def worker_case(label: str, path: Path, pages: list[int], preprocess: str) -> None:
    arg = json.dumps({"path": str(path), "pages": pages, "preprocess": preprocess})
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, arg], capture_output=True, text=True, check=True
    )
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    last = max(r[3] for r in res["pages"])
    print(
        f"{label}: {len(pages)} page(s) in {time.perf_counter() - t0:.1f} s; worker RSS "
        f"after init {res['after_init_mb']} MB, peak {res['peak_mb']} MB, "
        f"largest after a page {last} MB"
    )
    bad = [r for r in res["pages"] if not r[1]]
    if bad:
        print(f"  failed pages: {bad}")


def coordinator_case(paths: list[Path], pages: str | None, preprocess: str) -> None:
    import ocrbatch

    with tempfile.TemporaryDirectory(prefix="ocrbatch-bench-mem-") as d:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
        summary = ocrbatch.run(
            [str(p) for p in paths],
            Path(d) / "out",
            db=f"sqlite:///{d}/mem.db",
            config={
                "force_ocr": True,
                "pages": pages,
                "preprocess": preprocess,
                "cache_max_mb": 0,
                "timeout": 900,
            },
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print(
        f"whole job ({summary['pages']['completed']} pages, {summary['workers']} workers): "
        f"coordinator peak RSS {peak} MB (before the job {before} MB); coordinator + "
        f"workers sampled peak {summary['memory_usage_peak_mb']} MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--long-pages", default="1-68")
    ap.add_argument("--preprocess", default="auto")
    args = ap.parse_args()
    lo, _, hi = args.long_pages.partition("-")
    long_pages = list(range(int(lo) - 1, int(hi or lo)))
    multipage = CORPUS / "pdf" / "multipage.pdf"
    long_pdf = CORPUS / "pdf" / "docbank_arxiv_1807_09084.pdf"
    worker_case("9000x9000 px page (multipage.pdf p2)", multipage, [1], args.preprocess)
    worker_case(f"68-page PDF, pages {args.long_pages}", long_pdf, long_pages, args.preprocess)
    coordinator_case(
        [multipage, long_pdf],
        None if args.long_pages == "1-68" else args.long_pages,
        args.preprocess,
    )


if __name__ == "__main__":
    main()
