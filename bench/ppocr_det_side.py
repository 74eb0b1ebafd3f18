"""Choose the ppocr-torch detection size by measured CER on the dev corpus.

For each detector side length, runs the engine in this process on the first N pages of
each source and prints pooled CER / bag-of-words error per source and seconds per page,
side by side; ``--reference`` adds RapidOCR 1.4.4 (onnxruntime, its own default sizes,
same PP-OCRv4 models, classifier off) as the CPU reference.
Usage: python bench/ppocr_det_side.py [--sides 1600,1280,2048,960] [--per-source 3]
       [--device cpu|cuda] [--reference]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import SOURCES, Page, pages, reference
from ocrbatch.accuracy import Score, pooled, score
from ocrbatch.engines.ppocr import PpocrTorchEngine
from ocrbatch.model import PageTask
from ocrbatch.tools.images import load_image


def subset(per_source: int, sources: tuple[str, ...]) -> list[Page]:
    chosen: list[Page] = []
    for src in sources:
        chosen += [p for p in pages((src,))][:per_source]
    return chosen


def run_engine(side: int, corpus: list[Page], device: str) -> tuple[dict[str, list[Score]], float]:
    engine = PpocrTorchEngine({"det_side": side, "device": device})
    engine.open()
    per: dict[str, list[Score]] = {}
    t0 = time.perf_counter()
    for i, page in enumerate(corpus):
        image = load_image(str(page.image), 0, max_pixels=10**9)
        text = engine.recognize(image, PageTask(i, 0, i, str(page.image), 0, 1)).text
        per.setdefault(page.source, []).append(score(text, reference(page), casefold=page.casefold))
    return per, (time.perf_counter() - t0) / len(corpus)


def run_reference(corpus: list[Page]) -> tuple[dict[str, list[Score]], float]:
    from rapidocr_onnxruntime import RapidOCR

    ocr = RapidOCR()
    per: dict[str, list[Score]] = {}
    t0 = time.perf_counter()
    for page in corpus:
        res, _ = ocr(str(page.image), use_cls=False)
        text = "\n".join(r[1] for r in res or [])
        per.setdefault(page.source, []).append(score(text, reference(page), casefold=page.casefold))
    return per, (time.perf_counter() - t0) / len(corpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sides", default="1600,1280,2048,960")
    ap.add_argument("--per-source", type=int, default=3)
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--reference", action="store_true")
    args = ap.parse_args()
    sources = tuple(args.sources.split(","))
    corpus = subset(args.per_source, sources)
    runs: dict[str, tuple[dict[str, list[Score]], float]] = {}
    for side in (int(s) for s in args.sides.split(",")):
        runs[f"side {side}"] = run_engine(side, corpus, args.device)
        table(runs, sources, len(corpus), args.per_source)
    if args.reference:
        runs["rapidocr-1.4.4"] = run_reference(corpus)
        table(runs, sources, len(corpus), args.per_source)


def table(
    runs: dict[str, tuple[dict[str, list[Score]], float]],
    sources: tuple[str, ...],
    n_pages: int,
    per_source: int,
) -> None:
    """Print the table of the runs so far (a long run shows its results as they come)."""
    names = list(runs)
    print(f"\n{n_pages} pages ({per_source} per source); pooled CER / bag-of-words error")
    print(f"| source | pages | {' | '.join(names)} |")
    print(f"| --- | --- |{' --- |' * len(names)}")
    for src in sources:
        cells = []
        for name in names:
            s = pooled(runs[name][0].get(src, []))
            cells.append(f"{s.cer:.3f} / {s.bow:.3f}")
        n = len(runs[names[0]][0].get(src, []))
        print(f"| {src} | {n} | {' | '.join(cells)} |")
    allp = [pooled([x for v in runs[n][0].values() for x in v]) for n in names]
    print(f"| all | {n_pages} | {' | '.join(f'{s.cer:.3f} / {s.bow:.3f}' for s in allp)} |")
    print(f"| s/page | | {' | '.join(f'{runs[n][1]:.1f}' for n in names)} |", flush=True)


if __name__ == "__main__":
    main()
