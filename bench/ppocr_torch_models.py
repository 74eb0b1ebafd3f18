"""ppocr-torch with its default PP-OCRv4 models against the PP-OCRv6 models RapidOCR
ships (converted by ppocr-torch), and RapidOCR itself, on the first N pages of each
source preprocessed as a job does by default; this machine's device (CPU here), one
thread. Pooled CER / bag-of-words error and s/page per source and engine.

Usage: python bench/ppocr_torch_models.py [--per-source 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import SOURCES, pages, reference
from ocrbatch.accuracy import Score, pooled, score
from ocrbatch.engines.base import engine_class
from ocrbatch.engines.rapidocr import model_files
from ocrbatch.model import PageTask
from ocrbatch.preprocess import Preprocessor
from ocrbatch.tools.images import load_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--per-source", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    shipped = model_files()
    v6 = {"det_model": str(shipped["det"]), "rec_model": str(shipped["rec"])}
    engines: dict[str, Any] = {}
    for label, name, opts in (
        ("RapidOCR, PP-OCRv6", "rapidocr", {}),
        ("ppocr-torch, PP-OCRv4 (default)", "ppocr-torch", {"device": args.device}),
        ("ppocr-torch, PP-OCRv6", "ppocr-torch", {"device": args.device, **v6}),
    ):
        engine = engine_class(name)(opts, threads=1)
        engine.open()  # converted (once, then cached) and loaded here, before the clock
        engines[label] = engine
    pre = Preprocessor("auto")
    got: dict[tuple[str, str], list[tuple[Score, float]]] = {}
    for src in SOURCES:
        for p in [p for p in pages() if p.source == src][: args.per_source]:
            image, _ = pre.run(load_image(str(p.image), max_pixels=10**9))
            task = PageTask(1, 1, 1, str(p.image), 0, 1)
            for label, engine in engines.items():  # interleaved: the load hits all alike
                t = time.perf_counter()
                page = engine.recognize(image, task)
                seconds = time.perf_counter() - t
                s = score(page.text, reference(p), casefold=p.casefold, ignore="~")
                got.setdefault((src, label), []).append((s, seconds))
    print("| source | pages | engine, models | CER | bag-of-words | s/page |")
    print("| --- | --- | --- | --- | --- | --- |")
    for src in SOURCES:
        for label in engines:
            rows = got.get((src, label))
            if rows:
                s = pooled(r[0] for r in rows)
                t = sum(r[1] for r in rows) / len(rows)
                print(f"| {src} | {len(rows)} | {label} | {s.cer:.3f} | {s.bow:.3f} | {t:.2f} |")


if __name__ == "__main__":
    main()
