"""Pages/s on the dev corpus and the ratio to this machine's limit.

limit = workers / (mean single-process seconds per page of the same engine on the same
pages, measured in this same run, sequential mode). Also prints CER/WER/bag-of-words per
source. Usage: python bench/throughput.py [--workers N] [--model fast|standard] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ocrbatch
from corpus import SOURCES, pages, score_results
from ocrbatch.executors.base import available_cores


def run(mode: str, workers: int, inputs: list[str], tmp: Path, model: str) -> tuple[dict, Path]:
    out = tmp / f"out-{mode}-{workers}"
    t0 = time.perf_counter()
    summary = ocrbatch.run(
        inputs,
        out,
        db=f"sqlite:///{tmp / 'bench.db'}",
        force=True,
        config={
            "mode": mode,
            "workers": workers,
            "timeout": 600,
            "engine_options": {"model": model},
        },
    )
    summary["wall_s"] = time.perf_counter() - t0
    return summary, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=available_cores())
    ap.add_argument("--model", default="fast")
    ap.add_argument("--sources", default=",".join(SOURCES))
    args = ap.parse_args()
    corpus = pages(tuple(args.sources.split(",")))
    inputs = [str(p.image) for p in corpus]
    by_path = {str(p.image): p for p in corpus}
    with tempfile.TemporaryDirectory(prefix="ocrbatch-bench-") as d:
        tmp = Path(d)
        seq, seq_out = run("sequential", 1, inputs, tmp, args.model)
        par, par_out = run("parallel", args.workers, inputs, tmp, args.model)
        s_per_page = seq["processing_time_per_page_s"]
        limit = args.workers / s_per_page
        pps = par["throughput_pages_per_s"]
        par_s = par["processing_time_per_page_s"]
        print(f"pages: {len(inputs)}   engine: tesseract {args.model}   workers: {args.workers}")
        print(
            f"single process: {s_per_page:.3f} s/page (engine time; "
            f"wall {seq['wall_s'] / len(inputs):.3f} s/page incl. coordinator)"
        )
        print(
            f"parallel: {pps:.3f} pages/s   limit: {limit:.3f} pages/s   ratio: {pps / limit:.3f}"
        )
        print(
            f"parallel wall incl. discovery and exports: {par['wall_s']:.1f} s "
            f"({len(inputs) / par['wall_s']:.3f} pages/s)"
        )
        print(
            f"parallel engine time: {par_s:.3f} s/page "
            f"(vs {s_per_page:.3f} alone: contention {par_s / s_per_page:.3f}x)"
        )
        print(
            f"cpu usage avg {par['cpu_usage_avg_percent']}%  memory avg "
            f"{par['memory_usage_avg_mb']} MB, peak {par['memory_usage_peak_mb']} MB"
        )
        scores = score_results(par_out / "results.jsonl", by_path)
        sec: dict[str, list[float]] = {}
        for line in (seq_out / "results.jsonl").read_text().splitlines():
            rec = json.loads(line)
            sec.setdefault(by_path[rec["path"]].source, []).append(rec["processing_time"])
        print("\n| source | pages | CER | WER | bag-of-words | s/page |")
        print("| --- | --- | --- | --- | --- | --- |")
        for src in SOURCES:
            if src in scores:
                s = scores[src]
                t = sec[src]
                print(
                    f"| {src} | {len(t)} | {s.cer:.3f} | {s.wer:.3f} | {s.bow:.3f} | "
                    f"{sum(t) / len(t):.2f} |"
                )


if __name__ == "__main__":
    main()
