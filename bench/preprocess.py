"""Preprocessing and PDF benchmarks, side by side in one run.

1. Per source of the dev corpus: CER and s/page with --preprocess off and auto
   (sequential mode: s/page is one core's time per page, comparable across runs).
2. Born-digital PDFs (the docbank PDFs of corpus/pdf): pages/s with the text layer
   taken vs --force-ocr, and their ratio.
3. One long PDF (docbank_arxiv_1807_09084.pdf, 68 pages) alone with --force-ocr: pages/s
   of the parallel run and the ratio to the machine's limit, as bench/throughput.py
   defines it: limit = workers / (mean single-process seconds per page of the same
   pages, measured in this same run, sequential mode).

Usage: python bench/preprocess.py [--per-source N] [--pdf-pages 1-3] [--long-pages 1-68]
       [--workers N] [--skip accuracy,textlayer,long]    (default: everything, all pages)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ocrbatch
from corpus import CORPUS, SOURCES, Page, pages, score_results
from ocrbatch.executors.base import available_cores

DOCBANK_PDFS = (
    "docbank_arxiv_1710_11035.pdf",
    "docbank_arxiv_1706_01211.pdf",
    "docbank_arxiv_1807_09084.pdf",
)
LONG_PDF = "docbank_arxiv_1807_09084.pdf"


def _run(inputs: list[str], out: Path, db: str, **config: Any) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    summary = ocrbatch.run(
        inputs, out, db=db, force=True, config={"timeout": 900, "max_retries": 0, **config}
    )
    return summary, time.perf_counter() - t0


def _page_seconds(results: Path, by_path: dict[str, Page]) -> dict[str, list[float]]:
    sec: dict[str, list[float]] = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        for p in rec["page_results"]:
            sec.setdefault(by_path[rec["path"]].source, []).append(p["processing_time"] or 0.0)
    return sec


def _auto_work(results: Path, by_path: dict[str, Page]) -> dict[str, list[float]]:
    """Per source: [auto's own seconds (quality check, steps, second readings), the rest of
    the page's seconds, pages changed (steps or a second reading)], from each page's info.

    Measured inside the same pages, this is free of the run-to-run noise of a shared host
    that the cross-run s/page columns carry."""
    out: dict[str, list[float]] = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        for p in rec["page_results"]:
            info = p.get("info") or {}
            own = float(info.get("preprocess_s") or 0) + float(info.get("review_s") or 0)
            row = out.setdefault(by_path[rec["path"]].source, [0.0, 0.0, 0.0])
            row[0] += own
            row[1] += (p["processing_time"] or 0.0) - own
            row[2] += bool(info.get("steps") or info.get("second_reading"))
    return out


def accuracy(tmp: Path, per_source: int | None) -> None:
    chosen = [p for src in SOURCES for p in [q for q in pages((src,))][: per_source or None]]
    inputs = [str(p.image) for p in chosen]
    by_path = {str(p.image): p for p in chosen}
    rows = {}
    for mode in ("off", "auto"):
        out = tmp / f"acc-{mode}"
        # a fresh cache: auto pays its preprocessing here, as on a first run
        _run(
            inputs,
            out,
            f"sqlite:///{tmp / 'acc.db'}",
            mode="sequential",
            preprocess=mode,
            cache_dir=str(tmp / f"cache-{mode}"),
        )
        rows[mode] = (
            score_results(out / "results.jsonl", by_path),
            _page_seconds(out / "results.jsonl", by_path),
        )
        if mode == "auto":
            work = _auto_work(out / "results.jsonl", by_path)
    print(f"\n## --preprocess off vs auto ({len(inputs)} pages, one process)\n")
    print(
        "| source | pages | CER off | CER auto | change (points) | bag-of-words off | "
        "bag-of-words auto | s/page off | "
        "s/page auto | time change (two runs) | auto's own work (same pages) | pages changed |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for src in SOURCES:
        if src not in rows["off"][0]:
            continue
        c_off, c_auto = rows["off"][0][src].cer, rows["auto"][0][src].cer
        t_off = sum(rows["off"][1][src]) / len(rows["off"][1][src])
        t_auto = sum(rows["auto"][1][src]) / len(rows["auto"][1][src])
        print(
            f"| {src} | {len(rows['off'][1][src])} | {c_off:.4f} | {c_auto:.4f} | "
            f"{100 * (c_auto - c_off):+.2f} | {rows['off'][0][src].bow:.4f} | "
            f"{rows['auto'][0][src].bow:.4f} | {t_off:.2f} | {t_auto:.2f} | "
            f"{100 * (t_auto / t_off - 1):+.1f}% | {100 * work[src][0] / work[src][1]:+.1f}% | "
            f"{int(work[src][2])} |"
        )


def text_layer(tmp: Path, workers: int, page_spec: str | None) -> None:
    inputs = [str(CORPUS / "pdf" / n) for n in DOCBANK_PDFS]
    db = f"sqlite:///{tmp / 'tl.db'}"
    rates, per_page = {}, {}
    for label, force in (("text layer", False), ("--force-ocr", True)):
        summary, wall = _run(
            inputs,
            tmp / f"tl-{force}",
            db,
            workers=workers,
            force_ocr=force,
            cache_max_mb=0,
            pages=page_spec,
        )
        n = summary["pages"]["completed"]
        rates[label] = n / wall
        per_page[label] = summary["processing_time_per_page_s"]
        print(
            f"{label}: {n} pages in {wall:.1f} s = {n / wall:.2f} pages/s "
            f"(engine-side {summary['processing_time_per_page_s']:.4f} s/page)"
        )
    print(
        f"ratio text layer / --force-ocr: {rates['text layer'] / rates['--force-ocr']:.0f}x "
        f"in pages/s of the whole job (pool start-up included), "
        f"{per_page['--force-ocr'] / per_page['text layer']:.0f}x per page in the worker"
    )


def long_pdf(tmp: Path, workers: int, page_spec: str | None) -> None:
    pdf = [str(CORPUS / "pdf" / LONG_PDF)]
    db = f"sqlite:///{tmp / 'long.db'}"
    cfg = {"force_ocr": True, "pages": page_spec, "cache_max_mb": 0}
    seq, _ = _run(pdf, tmp / "long-seq", db, mode="sequential", **cfg)
    par, wall = _run(pdf, tmp / "long-par", db, workers=workers, **cfg)
    s_per_page = seq["processing_time_per_page_s"]
    limit = workers / s_per_page
    pps = par["throughput_pages_per_s"]
    print(
        f"\n## {LONG_PDF} alone, --force-ocr, pages {page_spec or 'all'}: "
        f"{par['pages']['completed']} pages, {workers} workers"
    )
    print(f"single process: {s_per_page:.3f} s/page   limit: {limit:.3f} pages/s")
    print(f"parallel: {pps:.3f} pages/s   ratio to the limit: {pps / limit:.3f}")
    print(
        f"parallel wall incl. discovery and exports: {wall:.1f} s; cpu avg "
        f"{par['cpu_usage_avg_percent']}%, memory peak {par['memory_usage_peak_mb']} MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--workers", type=int, default=available_cores())
    ap.add_argument("--per-source", type=int, default=None, help="pages per source")
    ap.add_argument("--pdf-pages", default=None, help="pages of each docbank PDF (default all)")
    ap.add_argument("--long-pages", default=None, help="e.g. 1-8 (default: all 68)")
    ap.add_argument("--skip", default="", help="comma list of accuracy,textlayer,long")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="ocrbatch-bench-pre-") as d:
        tmp = Path(d)
        if "accuracy" not in skip:
            accuracy(tmp, args.per_source)
        if "textlayer" not in skip:
            print("\n## born-digital PDFs (docbank): text layer vs --force-ocr\n")
            text_layer(tmp, args.workers, args.pdf_pages)
        if "long" not in skip:
            long_pdf(tmp, args.workers, args.long_pages)


if __name__ == "__main__":
    main()
