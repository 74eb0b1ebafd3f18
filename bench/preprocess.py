"""Preprocessing and PDF benchmarks, side by side in one run.

1. Per source of the dev corpus: CER and s/page with --preprocess off and auto
   (sequential mode: s/page is one core's time per page, comparable across runs; off
   and auto alternate over --rounds and their times are pooled). Then the same pages
   read with off and auto one right after the other in one process: auto's cost in
   time without the drift of a shared host between separate runs.
2. Born-digital PDFs (the docbank PDFs of corpus/pdf): pages/s with the text layer
   taken vs --force-ocr, and their ratio.
3. One long PDF (docbank_arxiv_1807_09084.pdf, 68 pages) alone with --force-ocr: pages/s
   of the parallel run and the ratio to the machine's limit, as bench/throughput.py
   defines it: limit = workers / (mean single-process seconds per page of the same
   pages, measured in this same run, sequential mode).

Usage: python bench/preprocess.py [--per-source N] [--pdf-pages 1-3] [--long-pages 1-68]
       [--rounds 1] [--workers N] [--skip accuracy,interleaved,textlayer,long]
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


def accuracy(tmp: Path, per_source: int | None, rounds: int) -> None:
    chosen = [p for src in SOURCES for p in [q for q in pages((src,))][: per_source or None]]
    inputs = [str(p.image) for p in chosen]
    by_path = {str(p.image): p for p in chosen}
    scores: dict[str, Any] = {}
    secs: dict[str, dict[str, list[float]]] = {"off": {}, "auto": {}}
    work: dict[str, list[float]] = {}
    # Off and auto alternate (off first, then auto first, ...) and their times are pooled
    # over the rounds, so that a slow spell of the shared host weighs on both alike.
    for r in range(rounds):
        for mode in ("off", "auto") if r % 2 == 0 else ("auto", "off"):
            out = tmp / f"acc-{mode}-{r}"
            # a fresh cache: auto pays its preprocessing here, as on a first run
            _run(
                inputs,
                out,
                f"sqlite:///{tmp / 'acc.db'}",
                mode="sequential",
                preprocess=mode,
                cache_dir=str(tmp / f"cache-{mode}-{r}"),
            )
            scores.setdefault(mode, score_results(out / "results.jsonl", by_path))
            for src, sec in _page_seconds(out / "results.jsonl", by_path).items():
                secs[mode].setdefault(src, []).extend(sec)
            if mode == "auto":
                for src, row in _auto_work(out / "results.jsonl", by_path).items():
                    acc = work.setdefault(src, [0.0, 0.0, 0.0])
                    acc[0] += row[0]
                    acc[1] += row[1]
                    acc[2] = row[2]
    rows = {mode: (scores[mode], secs[mode]) for mode in ("off", "auto")}
    print(
        f"\n## --preprocess off vs auto ({len(inputs)} pages, one process, "
        f"{rounds} rounds alternated, times pooled)\n"
    )
    print(
        "| source | pages | CER off | CER auto | change (points) | bag-of-words off | "
        "bag-of-words auto | s/page off | "
        "s/page auto | time change (separate runs) | auto's own work (same pages) | pages changed |"
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


def interleaved(tmp: Path, per_source: int | None) -> None:
    """auto's cost in time, free of the host's drift between separate runs: one process
    holds both set-ups (as a worker does) and reads every page with off and with auto,
    one right after the other, the order swapped from page to page. Fresh page cache,
    so auto pays its preprocessing as on a first run."""
    from ocrbatch.model import PageTask
    from ocrbatch.pipeline import WorkerSpec, close_worker, init_worker, process_page

    specs = {
        m: WorkerSpec(engine="tesseract", preprocess=m, cache_dir=str(tmp / "cache-inter"))
        for m in ("off", "auto")
    }
    init_worker(specs["off"], ignore_sigint=False)
    print("\n## --preprocess off vs auto, pages interleaved in one process\n")
    print("| source | pages | s/page off | s/page auto | time change |")
    print("| --- | --- | --- | --- | --- |")
    try:
        for src in SOURCES:
            chosen = pages((src,))[: per_source or None]
            tot = {"off": 0.0, "auto": 0.0}
            for i, p in enumerate(chosen):
                for m in ("off", "auto") if i % 2 == 0 else ("auto", "off"):
                    task = PageTask(
                        task_id=i,
                        job_id=0,
                        document_id=i,
                        path=str(p.image),
                        page_index=0,
                        attempt=1,
                        content_hash=f"{src}-{i}",
                    )
                    tot[m] += process_page(task, specs[m]).processing_time
            n = len(chosen)
            print(
                f"| {src} | {n} | {tot['off'] / n:.2f} | {tot['auto'] / n:.2f} | "
                f"{100 * (tot['auto'] / tot['off'] - 1):+.1f}% |"
            )
    finally:
        close_worker()


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
    ap.add_argument("--skip", default="", help="comma list of accuracy,interleaved,textlayer,long")
    ap.add_argument("--rounds", type=int, default=1, help="off/auto rounds, alternated")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="ocrbatch-bench-pre-") as d:
        tmp = Path(d)
        if "accuracy" not in skip:
            accuracy(tmp, args.per_source, args.rounds)
        if "interleaved" not in skip:
            interleaved(tmp, args.per_source)
        if "textlayer" not in skip:
            print("\n## born-digital PDFs (docbank): text layer vs --force-ocr\n")
            text_layer(tmp, args.workers, args.pdf_pages)
        if "long" not in skip:
            long_pdf(tmp, args.workers, args.long_pages)


if __name__ == "__main__":
    main()
