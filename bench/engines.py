"""Engines side by side on the dev corpus: CER, WER, bag-of-words error and s/page per
source for Tesseract fast and standard, RapidOCR on each runtime and the auto engine
(see ENGINES), scored by `ocrbatch eval`; then each job's wall and CPU seconds against
the first engine's, and the auto engine's routes per source.

Each engine runs as a normal job (parallel mode, one worker per core, no preprocessing
unless --preprocess auto, as the corpus reference run: "two CPU cores, one page at a
time per core") over a tree of symlinks
<tmp>/<source>/<id>.<ext> + <id>.gt.txt, so the ground truth is found beside each page
and `ocrbatch eval` reports per source folder. Normalization is the corpus README's:
sroie compared case-insensitively, `~` (UNLV's unreadable mark) dropped. s/page is the
engine's mean time per page inside its worker.

It then checks that `ocrbatch eval`'s Tesseract-fast scores agree with the reference run
of ../shared/corpus/README.md (Tesseract 5.3 CLI) and with the bench's own scorer.

Usage:
  python bench/engines.py                                  # all 86 pages, five engines
  python bench/engines.py --per-source 2 --engines fast    # a quick check
  python bench/engines.py --preprocess auto --engines fast,auto,rapidocr-onnxruntime,\
      rapidocr-openvino-f32,rapidocr,auto-unscaled         # issue 16's run
  python bench/engines.py --engines rapidocr --rapidocr-sizes 960,2000,2560,3600
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
from corpus import SOURCES, Page, pages, score_results
from ocrbatch.executors.base import available_cores

# ../shared/corpus/README.md, "Reference run": CER, WER, bag-of-words, s/page.
REFERENCE = {
    "sroie": (0.181, 0.395, 0.310, 1.2),
    "funsd": (0.270, 0.568, 0.364, 0.8),
    "oldbooks": (0.014, 0.049, 0.031, 2.1),
    "tesseract_test": (0.071, 0.094, 0.039, 2.9),
    "docbank": (0.055, 0.088, 0.046, 4.2),
}
CLEAN = ("oldbooks", "tesseract_test", "docbank")
ENGINES: dict[str, dict[str, Any]] = {
    "fast": {"engine": "tesseract", "engine_options": {"model": "fast"}},
    "standard": {"engine": "tesseract", "engine_options": {"model": "standard"}},
    # RapidOCR on its default runtime (OpenVINO when installed, its own precision)
    "rapidocr": {"engine": "rapidocr", "engine_options": {}},
    # ... as it ran before issue 16: onnxruntime
    "rapidocr-onnxruntime": {"engine": "rapidocr", "engine_options": {"runtime": "onnxruntime"}},
    # ... OpenVINO in f32 (what a CPU without bf16 gets)
    "rapidocr-openvino-f32": {
        "engine": "rapidocr",
        "engine_options": {"runtime": "openvino", "precision": "f32"},
    },
    # per-page routing between Tesseract fast and RapidOCR (engines/routing.py)
    "auto": {"engine": "auto", "engine_options": {}},
    # ... without shrinking pages to 10-px letters before PP-OCR
    "auto-unscaled": {"engine": "auto", "engine_options": {"ppocr_letter_height": 0}},
}


def link_tree(chosen: list[Page], root: Path) -> None:
    for p in chosen:
        folder = root / p.source
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(p.image, folder / p.image.name)
        os.symlink(p.gt, folder / p.gt.name)


def run_engine(
    label: str, cfg: dict[str, Any], root: Path, tmp: Path, workers: int, preprocess: str
) -> tuple[dict[str, Any], dict[str, Any], Path]:
    out = tmp / f"out-{label}"
    db = f"sqlite:///{tmp / 'bench.db'}"
    t0 = time.perf_counter()
    summary = ocrbatch.run(
        [str(root)],  # one input: each page is reported under its source folder
        out,
        db=db,
        name=f"bench-{label}",
        force=True,
        config={**cfg, "mode": "parallel", "workers": workers, "timeout": 900,
                "ignore_chars": "~", "formats": "jsonl", "preprocess": preprocess},
    )  # fmt: skip
    summary["wall_s"] = time.perf_counter() - t0
    job = summary["job"]
    plain = ocrbatch.evaluate(job, db=db, ignore_chars="~", casefold=False)["accuracy"]
    folded = ocrbatch.evaluate(job, db=db, ignore_chars="~", casefold=True)["accuracy"]
    by = dict(plain["by_folder"])
    if "sroie" in by:  # the corpus README: SROIE is upper case, compare case-insensitively
        by["sroie"] = folded["by_folder"]["sroie"]
    return summary, by, out


def seconds_per_page(out: Path, by_path: dict[str, Page]) -> dict[str, float]:
    import json

    per: dict[str, list[float]] = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        src = Path(rec["path"]).parent.name
        per.setdefault(src, []).append(float(rec["processing_time"] or 0.0))
    return {s: sum(v) / len(v) for s, v in per.items()}


def cpu_seconds(out: Path) -> float:
    """CPU seconds the workers spent on the job's pages (less sensitive than wall time
    to other work on a shared machine)."""
    import json

    total = 0.0
    for line in (out / "results.jsonl").read_text().splitlines():
        total += sum(float(p["cpu_time"] or 0.0) for p in json.loads(line)["page_results"])
    return total


def routes(out: Path) -> dict[str, dict[str, int]]:
    """Per source: how many pages took each route (engines that route pages)."""
    import json

    per: dict[str, dict[str, int]] = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        for page in rec["page_results"]:
            route = (page.get("info") or {}).get("route")
            if route:
                d = per.setdefault(Path(rec["path"]).parent.name, {})
                d[route] = d.get(route, 0) + 1
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--engines", default="fast,standard,rapidocr-onnxruntime,rapidocr,auto")
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--per-source", type=int, default=0, help="pages per source (0: all)")
    ap.add_argument("--workers", type=int, default=available_cores())
    ap.add_argument("--rapidocr-sizes", default="", help="also RapidOCR at these max_side")
    ap.add_argument(
        "--preprocess",
        default="off",
        help="off (the engines alone, as the corpus reference run) or auto",
    )
    args = ap.parse_args()
    corpus = pages(tuple(args.sources.split(",")))
    if args.per_source:
        chosen: list[Page] = []
        for src in SOURCES:
            chosen += [p for p in corpus if p.source == src][: args.per_source]
        corpus = chosen
    engines = {e: ENGINES[e] for e in args.engines.split(",") if e}
    for size in filter(None, args.rapidocr_sizes.split(",")):
        engines[f"rapidocr@{size}"] = {
            "engine": "rapidocr",
            "engine_options": {"max_side": int(size)},
        }
    by_path = {str(p.image): p for p in corpus}
    rows: list[tuple[str, str, int, Any, float]] = []
    walls: dict[str, float] = {}
    cpus: dict[str, float] = {}
    routed: dict[str, dict[str, dict[str, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="ocrbatch-engines-") as d:
        tmp = Path(d)
        root = tmp / "corpus"
        link_tree(corpus, root)
        linked = {str(root / p.source / p.image.name): p for p in corpus}
        for label, cfg in engines.items():
            summary, by, out = run_engine(label, cfg, root, tmp, args.workers, args.preprocess)
            sec = seconds_per_page(out, by_path)
            walls[label] = summary["wall_s"]
            cpus[label] = cpu_seconds(out)
            if routes(out):
                routed[label] = routes(out)
            print(
                f"{label}: {summary['pages']['completed']}/{summary['pages']['total']} pages, "
                f"wall {summary['wall_s']:.1f} s, {summary['throughput_pages_per_s']} pages/s "
                f"with {args.workers} workers",
                flush=True,
            )
            for src in SOURCES:
                if src in by:
                    rows.append((src, label, by[src]["pages"], by[src], sec.get(src, 0.0)))
            if label == "fast":
                own = score_results(out / "results.jsonl", linked)
                check_fast(by, own)
    print("\n| source | engine | pages | CER | WER | bag-of-words | s/page |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for src, label, n, s, t in sorted(rows, key=lambda r: (SOURCES.index(r[0]), r[1])):
        rates = f"{s['cer']:.3f} | {s['wer']:.3f} | {s['bow']:.3f}"
        print(f"| {src} | {label} | {n} | {rates} | {t:.2f} |")
    print("\nWhole job: wall seconds, and the workers' CPU seconds on its pages (each also")
    print("against the first engine run):")
    first = next(iter(walls), None)
    for label, wall in walls.items():
        ratio = f" = {wall / walls[first]:.2f}x {first}" if first else ""
        cpu = f"{cpus[label]:.1f} CPU s = {cpus[label] / cpus[first]:.2f}x" if first else ""
        print(f"  {label}: {wall:.1f} s{ratio}; {cpu}")
    for label, per in routed.items():
        print(f"\nRoutes of {label}:")
        for src in SOURCES:
            if src in per:
                print(f"  {src}: " + ", ".join(f"{k} {v}" for k, v in sorted(per[src].items())))


def check_fast(by: dict[str, Any], own: dict[str, Any]) -> None:
    """`ocrbatch eval` vs the corpus reference run and vs the bench's own scorer."""
    print("\nTesseract fast: ocrbatch eval vs the corpus reference run (Tesseract 5.3 CLI)")
    print("| source | pages | CER eval | CER reference | diff | bench scorer CER |")
    print("| --- | --- | --- | --- | --- | --- |")
    for src in SOURCES:
        if src not in by:
            continue
        cer, ref = by[src]["cer"], REFERENCE[src][0]
        note = "" if src in CLEAN else " (noisy source)"
        print(
            f"| {src} | {by[src]['pages']} | {cer:.3f} | {ref:.3f} | {cer - ref:+.3f}{note} "
            f"| {own[src].cer:.3f} |"
        )
        # The two scorers implement the same documented normalization (eval drops `~`
        # from the OCR output too, the bench scorer from the reference only).
        if abs(own[src].cer - cer) > 0.002:
            print(f"WARNING: {src}: eval and bench scorer disagree", flush=True)
    print()


if __name__ == "__main__":
    main()
