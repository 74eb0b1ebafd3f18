"""Line-level routing, measured: Tesseract reads each page, and only the lines it is
unsure of are read again by PP-OCR's recogniser (RapidOCR's, on the line's crop), the
rest of the page kept as Tesseract read it. Would the auto engine reach PP-OCR's
accuracy at little more than Tesseract's cost this way (issue 16)?

1. Every corpus page, preprocessed as a job does by default (``--preprocess auto``), is
   read in this process, one thread: by Tesseract (fast model), by PP-OCR on the whole
   page as the auto engine reads it (shrunk to 10-px letters), and each of Tesseract's
   text lines (its box, padded by 15% of its height) by PP-OCR's recogniser, all the
   lines of a page in one call; the recogniser's time is shared among the lines by
   their width at 48 px high (its cost is proportional to width). Kept in a JSON-lines
   file (``--data``; reused when it exists).
2. For thresholds on Tesseract's line confidence (or its lowest word confidence), the
   page's text with the lines below it replaced by the recogniser's reading, scored
   pooled per source; the main error as the issue defines it (CER for sroie and
   oldbooks, bag-of-words for the others) and, in brackets, as a multiple of the best
   variant's; cost = engine seconds over all pages as a multiple of Tesseract's.

Usage: python bench/line_routing.py [--data /tmp/line-routing.jsonl] [--rebuild]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import SOURCES, prepared, reference
from ocrbatch.accuracy import pooled, score

MAIN = {"sroie": "cer", "oldbooks": "cer"}  # the others: bag-of-words


def build(path: Path) -> None:
    import cv2
    import numpy as np
    from rapidocr.ch_ppocr_rec.typings import TextRecInput

    from ocrbatch.engines.routing import AutoEngine

    auto = AutoEngine({}, threads=1)
    auto.open()
    tess = auto._engine("tesseract")
    if not auto.ppocr_available():
        raise SystemExit("no PP-OCR engine can run here (pip install -e '.[rapidocr]')")
    rec = auto._engine("ppocr")._ocr.text_rec  # type: ignore[attr-defined]
    with path.open("w", encoding="utf-8") as out:
        for p, image, task, f in prepared():
            t = time.perf_counter()
            page = tess.recognize(image, task)
            tess_s = time.perf_counter() - t
            t = time.perf_counter()
            whole = auto.read_ppocr(image, task, f)
            pp_s = time.perf_counter() - t
            grey = np.asarray(image.convert("L"))
            height, width = grey.shape
            lines: list[dict[str, Any]] = []
            crops = []
            for b, block in enumerate(page.blocks):
                for ln in block.lines:
                    x0, y0, x1, y1 = ln.box
                    pad = max(3, round((y1 - y0) * 0.15))
                    crop = grey[max(0, y0 - pad) : min(height, y1 + pad),
                                max(0, x0 - pad) : min(width, x1 + pad)]  # fmt: skip
                    crops.append(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR))
                    lines.append({"block": b, "text": ln.text, "conf": ln.confidence,
                                  "min_word": min(w.confidence for w in ln.words)})  # fmt: skip
            t = time.perf_counter()
            read = rec(TextRecInput(img=crops)) if crops else None
            rec_s = time.perf_counter() - t
            widths = [c.shape[1] * 48 / max(1, c.shape[0]) for c in crops]
            for ln, txt, wd in zip(lines, read.txts if read else (), widths, strict=False):
                ln.update(rec=txt, rec_s=rec_s * wd / (sum(widths) or 1))
            row = {"source": p.source, "id": p.image.stem, "casefold": p.casefold,
                   "ref": reference(p), "tess_text": page.text, "tess_s": tess_s,
                   "pp_text": whole.text, "pp_s": pp_s, "lines": lines}  # fmt: skip
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(f"{p.source} {p.image.stem}: Tesseract {tess_s:.2f} s, PP-OCR {pp_s:.2f} s, "
                  f"recogniser on its {len(lines)} lines {rec_s:.2f} s", flush=True)  # fmt: skip


def hybrid(row: dict[str, Any], below: float, key: str) -> tuple[str, float]:
    """The page's text with lines whose ``key`` is below ``below`` read again; its cost."""
    blocks: dict[int, list[str]] = collections.defaultdict(list)
    cost = row["tess_s"]
    for ln in row["lines"]:
        again = ln[key] < below and ln.get("rec") is not None
        cost += ln["rec_s"] if again else 0.0
        blocks[ln["block"]].append(ln["rec"] if again else ln["text"])
    return "\n\n".join("\n".join(b) for b in blocks.values()), cost


def report(rows: list[dict[str, Any]]) -> None:
    variants: dict[str, Callable[[dict[str, Any]], tuple[str, float]]] = {
        "Tesseract": lambda r: (r["tess_text"], r["tess_s"]),
        "PP-OCR, whole page": lambda r: (r["pp_text"], r["pp_s"]),
    }
    for below in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.01):
        variants[f"lines with confidence < {below:g} read again"] = lambda r, b=below: hybrid(
            r, b, "conf"
        )
    for below in (0.3, 0.5, 0.7):
        variants[f"lines with a word's confidence < {below:g} read again"] = lambda r, b=below: (
            hybrid(r, b, "min_word")
        )
    errors: dict[str, dict[str, float]] = {}
    costs: dict[str, float] = {}
    for name, fn in variants.items():
        errors[name], costs[name] = {}, 0.0
        for src in SOURCES:
            scores = []
            for r in (r for r in rows if r["source"] == src):
                text, cost = fn(r)
                costs[name] += cost
                scores.append(score(text, r["ref"], casefold=r["casefold"], ignore="~"))
            if scores:
                s = pooled(scores)
                errors[name][src] = s.cer if MAIN.get(src) == "cer" else s.bow
    srcs = [s for s in SOURCES if s in errors["Tesseract"]]
    best = {s: min(e[s] for e in errors.values()) for s in srcs}
    print("\n| variant | " + " | ".join(srcs) + " | cost (x Tesseract) |")
    print("| --- |" + " --- |" * (len(srcs) + 1))
    for name in variants:
        cells = " | ".join(f"{errors[name][s]:.3f} ({errors[name][s] / best[s]:.2f})" for s in srcs)
        print(f"| {name} | {cells} | {costs[name] / costs['Tesseract']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "line-routing.jsonl")
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    if args.rebuild or not args.data.is_file():
        build(args.data)
    report([json.loads(x) for x in args.data.read_text(encoding="utf-8").splitlines()])


if __name__ == "__main__":
    main()
