"""ppocr-torch with its default PP-OCRv4 models against the PP-OCRv6 models RapidOCR
ships (converted by ppocr-torch), and RapidOCR itself, on the first N pages of each
source preprocessed as a job does by default; this machine's device (CPU here), one
thread. Pooled CER / bag-of-words error and s/page per source and engine.

Usage: python bench/ppocr_torch_models.py [--per-source 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ocrbatch.engines.base import engine_class
from ocrbatch.engines.rapidocr import model_files
from ppocr_cpu import read_interleaved


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
    read_interleaved(engines, args.per_source, shrink=False)


if __name__ == "__main__":
    main()
