"""One-shot GPU benchmark of the ppocr-torch engine (prepared for one H200 lease).

In one run, side by side:
  1. accuracy: every corpus page read on the device in fp16 and in fp32 -> pooled CER
     and bag-of-words error per source (compare with the CPU path: --cpu-json, made by
     ``python bench/gpu.py --device cpu --only-accuracy --json cpu.json`` on any machine);
  2. model-only limit: the detector and recogniser calls of step 1 (fp16), replayed with
     the same shapes on random data and timed alone -> pages/s the models allow;
  3. end to end (engine level): the batch executor (CPU preparation processes + one
     device process) on the corpus pages repeated to --pages tasks -> pages/s, GPU
     utilization (NVML, sampled every 0.1 s), ratio to (2);
  4. end to end (job level): ``ocrbatch.run`` on the same number of page files (store,
     scheduler, exports included) -> pages/s, GPU utilization, ratio to (2).
Prints one table and writes --json. Target (issue 6): >= 100 pages/s end to end.

On the device machine (see bench/gpu_stage.sh, which stages wheels and the corpus):
  PYTHONPATH=/tmp/site:src python3 bench/gpu.py --corpus .device/corpus --pages 2000
Dry run on a CPU machine (checks that the script works, measures nothing useful):
  .venv/bin/python bench/gpu.py --device cpu --sources funsd --per-source 1 --pages 4 \
      --det-side 960 --det-batch 2 --workers 1 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class GpuSampler:
    """Mean GPU utilization (%) over a block, sampled by NVML (or nvidia-smi)."""

    def __init__(self, index: int = 0, period: float = 0.1) -> None:
        self.index, self.period = index, period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._read: Callable[[], float] | None = None
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._read = lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:
            if shutil.which("nvidia-smi"):
                import subprocess

                def smi() -> float:
                    out = subprocess.run(
                        [
                            "nvidia-smi",
                            "-i",
                            str(index),
                            "--query-gpu=utilization.gpu",
                            "--format=csv,noheader,nounits",
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                        timeout=5,
                    ).stdout
                    return float(out.strip().splitlines()[0])

                self._read, self.period = smi, 0.5

    def __enter__(self) -> GpuSampler:
        if self._read is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        assert self._read is not None
        while not self._stop.wait(self.period):
            try:
                self.samples.append(self._read())
            except Exception:
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


class Recorder:
    """Wraps a model: records the shape and dtype of every input it is called with."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.calls: list[Any] = []

    def __call__(self, x: Any) -> Any:
        self.calls.append((tuple(x.shape), x.dtype))
        return self.module(x)


def synced(device: str) -> Callable[[], None]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def accuracy(
    corpus: list[Any], device: str, precision: str, options: dict[str, Any]
) -> tuple[dict[str, Any], Any, dict[str, str]]:
    """Read every page (batched) -> per-source scores, the engine and each page's text."""
    from corpus import reference
    from ocrbatch.accuracy import pooled, score
    from ocrbatch.engines.ppocr import PpocrTorchEngine
    from ocrbatch.tools.images import load_image

    engine = PpocrTorchEngine({**options, "device": device, "precision": precision})
    engine.open()
    engine._det = Recorder(engine._det)
    engine._rec = Recorder(engine._rec)
    prepared = [engine.prepare(load_image(str(p.image), 0, max_pixels=10**9)) for p in corpus]
    sync = synced(device)
    sync()
    t0 = time.perf_counter()
    pages = engine.recognize_batch(prepared)
    sync()
    seconds = time.perf_counter() - t0
    per: dict[str, list[Any]] = {}
    texts = {}
    for p, page in zip(corpus, pages, strict=True):
        per.setdefault(p.source, []).append(score(page.text, reference(p), casefold=p.casefold))
        texts[str(p.image)] = page.text
    table = {
        src: {"pages": len(s), "cer": pooled(s).cer, "bow": pooled(s).bow} for src, s in per.items()
    }
    table["_all"] = {
        "pages": len(corpus),
        "cer": pooled([x for v in per.values() for x in v]).cer,
        "seconds": seconds,
        "lines": sum(len(ln.words) > 0 for pg in pages for b in pg.blocks for ln in b.lines),
    }
    return table, engine, texts


def model_only(engine: Any, device: str, pages: int, repeats: int = 3) -> dict[str, float]:
    """Replay the recorded model calls on random data of the same shapes, timed alone."""
    import torch

    sync = synced(device)
    out: dict[str, float] = {}
    for name, rec in (("det", engine._det), ("rec", engine._rec)):
        inputs = [torch.randn(shape, device=device).to(dtype) for shape, dtype in rec.calls]
        with torch.inference_mode():
            for x in inputs:  # warm-up: cudnn picks its kernels per shape
                rec.module(x)
            sync()
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                for x in inputs:
                    rec.module(x)
                sync()
                best = min(best, time.perf_counter() - t0)
        out[f"{name}_s"] = best
        out[f"{name}_calls"] = len(inputs)
    out["pages_per_s"] = pages / (out["det_s"] + out["rec_s"])
    return out


def engine_level(
    corpus: list[Any],
    total: int,
    workers: int,
    device: str,
    options: dict[str, Any],
    preprocess: str,
) -> dict[str, Any]:
    from ocrbatch.executors.batched import BatchedExecutor
    from ocrbatch.model import PageTask
    from ocrbatch.pipeline import WorkerSpec

    ex = BatchedExecutor(workers, [device], timeout=600)
    spec = WorkerSpec(
        "ppocr-torch",
        {**options, "device": device},
        timeout=600,
        preprocess=preprocess,
        cache_max_mb=0,
    )
    ex.start(spec)
    tasks = [PageTask(i, 1, i, str(corpus[i % len(corpus)].image), 0, 1) for i in range(total)]
    done = failed = 0
    with GpuSampler(_index(device)) as gpu:
        t0 = time.perf_counter()
        queue = list(reversed(tasks))
        while queue or ex.in_flight():
            for _ in range(ex.capacity()):
                if not queue:
                    break
                ex.submit(queue.pop())
            for o in ex.collect(0.05):
                done += 1
                failed += not o.ok
        wall = time.perf_counter() - t0
    ex.close()
    return {
        "pages": done,
        "failed": failed,
        "wall_s": wall,
        "pages_per_s": done / wall,
        "gpu_util": gpu.mean,
        "prep_workers": workers,
    }


def job_level(
    corpus: list[Any], total: int, workers: int, options: dict[str, Any], preprocess: str
) -> dict[str, Any]:
    import ocrbatch

    with tempfile.TemporaryDirectory(prefix="ocrbatch-gpu-") as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for i in range(total):
            page = corpus[i % len(corpus)].image
            target = src / f"{i:05d}{page.suffix}"
            shutil.copyfile(page, target)
            # A unique trailer (decoders ignore bytes past the image's end): identical
            # content would be recognized once and reused by content hash.
            with target.open("ab") as f:
                f.write(f"\n%ocrbatch-bench-{i}\n".encode())
        with GpuSampler(0) as gpu:
            t0 = time.perf_counter()
            summary = ocrbatch.run(
                [str(src)],
                Path(tmp) / "out",
                db=f"sqlite:///{Path(tmp) / 'jobs.db'}",
                config={
                    "mode": "parallel",
                    "workers": workers,
                    "timeout": 600,
                    "engine": "ppocr-torch",
                    "engine_options": options,
                    "preprocess": preprocess,
                    "cache_max_mb": 0,  # repeated pages must not be page-cache hits
                },
            )
            wall = time.perf_counter() - t0
    return {
        "pages": summary["pages"]["completed"],
        "failed": summary["pages"].get("failed"),
        "wall_s": wall,
        "pages_per_s": summary["pages"]["completed"] / wall,
        "gpu_util": gpu.mean,
    }


def _index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", help="corpus folder (default: ../shared/corpus)")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--pages", type=int, default=2000, help="end-to-end tasks (>= 2000 on GPU)")
    ap.add_argument("--per-source", type=int, default=0, help="0 = every corpus page")
    ap.add_argument("--sources", default="", help="comma-separated subset (dry runs)")
    ap.add_argument("--repeats", type=int, default=3, help="model-only timing repeats")
    ap.add_argument("--det-side", type=int, default=None)
    ap.add_argument("--det-batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--only-accuracy", action="store_true")
    ap.add_argument(
        "--preprocess", default="off", help="end-to-end runs (off = as the accuracy pass)"
    )
    ap.add_argument("--skip-job", action="store_true", help="skip the ocrbatch.run level")
    ap.add_argument("--cpu-json", help="per-source CER of the CPU path, for the table")
    ap.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."), "gpu_bench.json"))
    args = ap.parse_args()
    if args.corpus:
        os.environ["OCRBATCH_CORPUS"] = str(Path(args.corpus).resolve())
    import torch

    from corpus import SOURCES, pages
    from ocrbatch.engines.ppocr import PpocrTorchOptions

    corpus = []
    for src in args.sources.split(",") if args.sources else SOURCES:
        found = pages((src,))
        corpus += found[: args.per_source] if args.per_source else found
    options: dict[str, Any] = {"det_batch": args.det_batch}
    if args.det_side:
        options["det_side"] = args.det_side
    det_side = options.get("det_side", PpocrTorchOptions().det_side)
    on_gpu = args.device.startswith("cuda")
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(_index(args.device)) if on_gpu else "cpu",
        "corpus_pages": len(corpus),
        "det_side": det_side,
        "det_batch": args.det_batch,
        "preprocess": args.preprocess,
        "prep_workers": args.workers,
    }
    log(f"{report['device']}, torch {report['torch']}, {len(corpus)} corpus pages")
    precisions = ["fp16", "fp32"] if on_gpu else ["fp32"]
    engine = None
    for prec in precisions:
        table, eng, texts = accuracy(corpus, args.device, prec, options)
        report[f"accuracy_{prec}"] = table
        report[f"texts_{prec}"] = texts
        if engine is None:
            engine = eng
        log(f"accuracy {prec}: CER {table['_all']['cer']:.4f} in {table['_all']['seconds']:.1f}s")
    if on_gpu:
        same = sum(report["texts_fp16"][k] == report["texts_fp32"][k] for k in report["texts_fp16"])
        report["fp16_pages_identical_to_fp32"] = f"{same}/{len(corpus)}"
    if args.only_accuracy:
        return _finish(report, args)
    assert engine is not None
    report["model_only"] = model_only(engine, args.device, len(corpus), args.repeats)
    log(f"model-only limit: {report['model_only']['pages_per_s']:.1f} pages/s")
    engine.close()
    del engine
    if on_gpu:
        torch.cuda.empty_cache()
    report["engine_level"] = engine_level(
        corpus, args.pages, args.workers, args.device, options, args.preprocess
    )
    log(f"engine level: {report['engine_level']['pages_per_s']:.1f} pages/s")
    if not args.skip_job:
        job_options = {**options, "device": args.device if on_gpu else "cpu"}
        report["job_level"] = job_level(
            corpus, args.pages, args.workers, job_options, args.preprocess
        )
        log(f"job level: {report['job_level']['pages_per_s']:.1f} pages/s")
    _finish(report, args)


def _finish(report: dict[str, Any], args: argparse.Namespace) -> None:
    cpu = json.loads(Path(args.cpu_json).read_text())["accuracy_fp32"] if args.cpu_json else {}
    cols = [k for k in ("accuracy_fp16", "accuracy_fp32") if k in report]
    print(
        f"\n{report['device']} | torch {report['torch']} | det_side {report['det_side']} | "
        f"det_batch {report['det_batch']}"
    )
    head = " | ".join(
        [c.split("_")[1] + " CER / BoW" for c in cols] + (["CPU fp32 CER"] if cpu else [])
    )
    print(f"| source | pages | {head} |")
    print("| --- | --- |" + " --- |" * (len(cols) + bool(cpu)))
    for src in [s for s in report[cols[0]] if s != "_all"]:
        cells = [f"{report[c][src]['cer']:.3f} / {report[c][src]['bow']:.3f}" for c in cols]
        if cpu:
            cells.append(f"{cpu[src]['cer']:.3f}" if src in cpu else "-")
        print(f"| {src} | {report[cols[0]][src]['pages']} | {' | '.join(cells)} |")
    if "fp16_pages_identical_to_fp32" in report:
        print(f"fp16 text identical to fp32 on {report['fp16_pages_identical_to_fp32']} pages")
    limit = report.get("model_only", {}).get("pages_per_s")
    if limit:
        m = report["model_only"]
        print(
            f"\nmodel-only limit: {limit:.4g} pages/s (det {m['det_s']:.2f}s in "
            f"{m['det_calls']} calls + rec {m['rec_s']:.2f}s in {m['rec_calls']} calls "
            f"for {report['corpus_pages']} pages)"
        )
        print("| level | pages | wall s | pages/s | GPU util % | ratio to model-only |")
        print("| --- | --- | --- | --- | --- | --- |")
        for level in ("engine_level", "job_level"):
            r = report.get(level)
            if not r:
                continue
            util = f"{r['gpu_util']:.0f}" if r.get("gpu_util") is not None else "n/a"
            print(
                f"| {level} | {r['pages']} ({r['failed']} failed) | {r['wall_s']:.1f} | "
                f"{r['pages_per_s']:.4g} | {util} | {r['pages_per_s'] / limit:.2f} |"
            )
    slim = {k: v for k, v in report.items() if not k.startswith("texts_")}
    Path(args.json).write_text(json.dumps(slim, indent=2, default=str))
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
