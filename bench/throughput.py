"""Pages/s on the dev corpus and the ratio to this machine's limit.

limit = workers / (mean single-process seconds per page of the same engine on the same
pages, measured in this same run, sequential mode). Also prints CER/WER/bag-of-words per
source. The single-process and pool runs alternate over --rounds (the order swapped each
round) and are pooled, so that a slow spell of the shared host weighs on both alike.

Side by side in each round (where the tools are installed: apt-get install
tesseract-ocr parallel):
- GNU parallel + the Tesseract CLI, OMP_THREAD_LIMIT=1, the same pages and the same
  traineddata, `parallel -j WORKERS tesseract PAGE OUT --psm 3`, wall clock; compared
  with `ocrbatch run` as a user types it (a subprocess, wall clock from the command's
  start to its end, start-up, discovery and exports included), with --preprocess off
  (the same work: each page read once) and as configured (--preprocess);
- with --wall-pages N (40 by default): `ocrbatch run` on the first N pages, wall clock
  from the command's start, as a ratio to the limit on those pages.
With --wall-rounds K the side-by-side wall-clock runs are repeated K times in each round
(the single-process and pool runs are not): the host's swing from run to run is larger
than the differences measured, and these runs are the short ones.
Usage: python bench/throughput.py [--workers N] [--model fast|standard] [--rounds 2]
       [--preprocess auto|off|STEPS] [--sources a,b] [--repeat K] [--wall-pages 40]
       [--wall-rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ocrbatch
from corpus import SOURCES, pages, score_results
from ocrbatch.executors.base import available_cores


def run(
    mode: str, workers: int, inputs: list[str], tmp: Path, model: str, preprocess: str
) -> tuple[dict[str, Any], Path]:
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
            # Both runs do the same work: no page cache (it would let the second run skip
            # the preprocessing the first one did).
            "preprocess": preprocess,
            "cache_max_mb": 0,
        },
    )
    summary["wall_s"] = time.perf_counter() - t0
    return summary, out


def cli_run(inputs: list[str], tmp: Path, workers: int, model: str, preprocess: str,
            tag: str) -> float:  # fmt: skip
    """Wall seconds of `ocrbatch run` as a user types it (a new process)."""
    out = tmp / f"cli-{tag}"
    listing = tmp / f"cli-{tag}.txt"
    listing.write_text("".join(f"{p}\n" for p in inputs))
    cmd = [str(Path(sys.executable).with_name("ocrbatch")), "--progress", "none", "run",
           f"@{listing}", "-o", str(out), "--workers", str(workers), "--model", model,
           "--preprocess", preprocess, "--cache-max-mb", "0", "--force", "--timeout", "600",
           "--db", f"sqlite:///{tmp / 'cli.db'}"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def gnu_parallel(inputs: list[str], tmp: Path, workers: int, model: str) -> float | None:
    """Wall seconds of GNU parallel + the Tesseract CLI on ``inputs`` (None where they
    are not installed)."""
    if not (shutil.which("parallel") and shutil.which("tesseract")):
        return None
    import ocrbatch.engines.tesseract as t
    from ocrbatch.config import TesseractOptions

    tessdata = t.resolve_tessdata(TesseractOptions(model=model))  # the same model
    out = tmp / "gnu"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    cmd = ["parallel", "-j", str(workers), "--will-cite", "tesseract", "{}", f"{out}/{{#}}",
           "--tessdata-dir", str(tessdata), "-l", "eng", "--psm", "3", ":::", *inputs]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=available_cores())
    ap.add_argument("--model", default="fast")
    ap.add_argument("--preprocess", default="auto", help="auto (the default), off, or steps")
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--wall-pages", type=int, default=40)
    ap.add_argument("--wall-rounds", type=int, default=1)
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="each page K times (as K documents): a longer run, where the pool's start-up "
        "(about a second) weighs less",
    )
    args = ap.parse_args()
    corpus = pages(tuple(args.sources.split(",")))
    with tempfile.TemporaryDirectory(prefix="ocrbatch-bench-") as d:
        tmp = Path(d)
        by_path = {str(p.image): p for p in corpus}
        inputs = list(by_path)
        for k in range(1, args.repeat):
            for p in corpus:
                link = tmp / "copies" / str(k) / p.source / p.image.name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(p.image)
                by_path[str(link)] = p
                inputs.append(str(link))
        print(
            f"pages: {len(inputs)}   engine: tesseract {args.model}   workers: {args.workers}   "
            f"preprocess: {args.preprocess}   rounds: {args.rounds}   repeat: {args.repeat}"
        )
        # The host is shared and noisy: single-process and pool runs alternate (the order
        # swapped each round), and the ratio is taken over the sums.
        seq_s = par_pages = par_run = par_engine = 0.0
        wall: dict[str, float] = {}
        by_first: list[float] = []
        for r in range(args.rounds):
            if r % 2 == 0:
                seq, seq_out = run("sequential", 1, inputs, tmp, args.model, args.preprocess)
            par, par_out = run("parallel", args.workers, inputs, tmp, args.model, args.preprocess)
            if r % 2 == 1:
                seq, seq_out = run("sequential", 1, inputs, tmp, args.model, args.preprocess)
            s1, pps = seq["processing_time_per_page_s"], par["throughput_pages_per_s"]
            print(
                f"round {r + 1}: single process {s1:.3f} s/page -> limit "
                f"{args.workers / s1:.3f} pages/s; pool {pps:.3f} pages/s; ratio "
                f"{pps * s1 / args.workers:.3f}; pool engine time "
                f"{par['processing_time_per_page_s']:.3f} s/page; pool wall incl. discovery "
                f"and exports {par['wall_s']:.1f} s; cpu {par['cpu_usage_avg_percent']}%; "
                f"memory avg {par['memory_usage_avg_mb']} MB, peak {par['memory_usage_peak_mb']} MB"
            )
            seq_s += s1 * len(inputs)
            par_pages += len(inputs)
            par_run += par["total_time_s"]
            par_engine += par["processing_time_per_page_s"] * len(inputs)
            # The first pages' single-process seconds: the limit of the short runs below.
            first = inputs[: args.wall_pages]
            wanted = set(first)
            records = [json.loads(x) for x in (seq_out / "results.jsonl").read_text().splitlines()]
            seq_first = sum(rec["processing_time"] for rec in records if rec["path"] in wanted)
            for _ in range(args.wall_rounds):
                # Side by side: GNU parallel, and ocrbatch as a user types it (wall clock).
                gnu = gnu_parallel(inputs, tmp, args.workers, args.model)
                times = {
                    "gnu": gnu,
                    "off": cli_run(inputs, tmp, args.workers, args.model, "off", f"off{r}"),
                    "as": cli_run(inputs, tmp, args.workers, args.model, args.preprocess, f"as{r}"),
                }
                for k, v in times.items():
                    if v is not None:
                        wall[k] = wall.get(k, 0.0) + v
                t_first = cli_run(first, tmp, args.workers, args.model, args.preprocess, f"w{r}")
                by_first.append(seq_first / args.workers / t_first)
                print(
                    f"round {r + 1}: wall clock, {len(inputs)} pages: GNU parallel + tesseract CLI "
                    + (f"{gnu:.1f} s" if gnu is not None else "not installed")
                    + f"; ocrbatch run --preprocess off {times['off']:.1f} s, as configured "
                    f"{times['as']:.1f} s; first {len(first)} pages: ocrbatch run {t_first:.1f} s "
                    f"(ratio to the limit, start-up included: {by_first[-1]:.3f})"
                )
        s_per_page = seq_s / par_pages
        limit = args.workers / s_per_page
        pps = par_pages / par_run
        print(
            f"overall: single process {s_per_page:.3f} s/page, limit {limit:.3f} pages/s, "
            f"pool {pps:.3f} pages/s, ratio {pps / limit:.3f} (pool engine time "
            f"{par_engine / par_pages / s_per_page:.3f}x the single-process time)"
        )
        if "gnu" in wall:
            print(
                f"overall, wall clock: GNU parallel + tesseract CLI {wall['gnu']:.1f} s; "
                f"ocrbatch --preprocess off {wall['off']:.1f} s "
                f"({wall['gnu'] / wall['off']:.2f}x GNU parallel's speed), as configured "
                f"{wall['as']:.1f} s ({wall['gnu'] / wall['as']:.2f}x)"
            )
        print(
            f"overall, the first {args.wall_pages} pages, wall clock with start-up: ratio "
            f"{sum(by_first) / len(by_first):.3f} to the limit"
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
