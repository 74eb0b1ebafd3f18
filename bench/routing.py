"""The auto engine's routing rules, chosen on the dev corpus with each source held out.

1. Every corpus page is preprocessed as a job does by default (``--preprocess auto``)
   and read by both routes as the auto engine reads them, Tesseract (fast model) and
   PP-OCR (RapidOCR on its default runtime, the page shrunk to 10-px letters first), one
   thread each, in this process; the page's routing
   features (:func:`ocrbatch.engines.routing.page_features`), both readings' scores and
   both times are kept in a JSON-lines file (``--data``; reused when it exists).
2. A grid of rules (:class:`~ocrbatch.engines.routing.RouteRules`: letter height,
   speckle, contrast, Tesseract confidence) is scored by routing each page as
   :func:`~ocrbatch.engines.routing.choose_route` would, from the two readings.
3. Leave one source out: for each source, the rule is chosen on the other four, then
   scored on the held-out one. A rule's cost on a set of sources is the sum, over the
   sources, of its main error as a multiple of the better engine's (at least 1), plus
   half its engine seconds as a share of PP-OCR's on every page: accuracy first, then
   time (a rule on the edge of a 10% tolerance generalized worse).

Main error as the issue defines it: CER for sroie and oldbooks, bag-of-words error for
funsd, docbank and tesseract_test. Seconds are single-process engine seconds per page on
whatever load the machine had: compare them within one run only.

Usage:
  python bench/routing.py                   # build the data if needed, then LOSO
  python bench/routing.py --data /tmp/r.jsonl --rebuild
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import SOURCES, pages, reference
from ocrbatch.accuracy import Score, pooled, score
from ocrbatch.engines.routing import PageFeatures, RouteRules, choose_route, page_features

MAIN = {"sroie": "cer", "oldbooks": "cer", "funsd": "bow", "docbank": "bow"}
MAIN_DEFAULT = "bow"  # tesseract_test
TOLERANCE = 1.10  # the target: within 10% of the better engine
TIME_WEIGHT = 0.5

GRID = {
    "min_letter_height": [0.0, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 1e9],
    "max_speckle": [0.2, 0.3, 0.5, 1.0],
    "min_contrast": [0.0, 0.4, 0.5, 0.6],
    "min_tesseract_confidence": [0.0, 0.8, 0.84, 0.86, 0.88, 0.9, 0.92, 0.94, 1.01],
}


def main_metric(source: str) -> str:
    return MAIN.get(source, MAIN_DEFAULT)


def build(path: Path) -> None:
    from ocrbatch.engines.routing import AutoEngine
    from ocrbatch.model import PageTask
    from ocrbatch.preprocess import Preprocessor
    from ocrbatch.tools.images import load_image

    auto = AutoEngine({}, threads=1)
    auto.open()
    tess = auto._engine("tesseract")
    auto._engine("ppocr")  # opened before the clock starts
    pre = Preprocessor("auto")
    with path.open("w", encoding="utf-8") as out:
        for p in pages():
            image = load_image(str(p.image), max_pixels=10**9)
            image, info = pre.run(image)
            t = time.perf_counter()
            f = page_features(image)
            row: dict[str, Any] = {
                "source": p.source,
                "id": p.image.stem,
                "steps": info["steps"],
                "features": dataclasses.asdict(f),
                "features_s": time.perf_counter() - t,
            }
            task = PageTask(1, 1, 1, str(p.image), 0, 1)
            for label in ("tesseract", "ppocr"):
                t = time.perf_counter()
                if label == "tesseract":
                    page = tess.recognize(image, task)
                else:
                    page = auto.read_ppocr(image, task, f)
                s = score(page.text, reference(p), casefold=p.casefold, ignore="~")
                row[label] = {
                    "s": time.perf_counter() - t,
                    "confidence": page.confidence,
                    "score": s.to_dict(),
                }
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(
                f"{p.source} {p.image.stem}: letters {f.letter_height:.0f} px, "
                f"Tesseract {row['tesseract']['confidence']:.2f} "
                f"cer {row['tesseract']['score']['cer']:.3f} {row['tesseract']['s']:.1f} s, "
                f"PP-OCR cer {row['ppocr']['score']['cer']:.3f} {row['ppocr']['s']:.1f} s",
                flush=True,
            )
    auto.close()


def route_of(row: dict[str, Any], rules: RouteRules) -> str:
    """tesseract, ppocr or tesseract+ppocr (read by both, PP-OCR's reading kept)."""
    f = PageFeatures(**{**row["features"], "tesseract_confidence": None})
    if choose_route(f, rules).engine == "ppocr":
        return "ppocr"
    f = dataclasses.replace(f, tesseract_confidence=row["tesseract"]["confidence"])
    return "tesseract" if choose_route(f, rules).engine == "tesseract" else "tesseract+ppocr"


def outcome(rows: Iterable[dict[str, Any]], rules: RouteRules) -> dict[str, Any]:
    """Per source: pooled score and engine seconds of the routed readings, and routes."""
    per: dict[str, dict[str, Any]] = {}
    for row in rows:
        r = route_of(row, rules)
        kept = row["tesseract"] if r == "tesseract" else row["ppocr"]
        seconds = row["features_s"] + sum(row[e]["s"] for e in r.split("+"))
        d = per.setdefault(row["source"], {"scores": [], "s": 0.0, "routes": {}})
        d["scores"].append(Score.from_dict(kept["score"]))
        d["s"] += seconds
        d["routes"][r] = d["routes"].get(r, 0) + 1
    return {
        src: {
            "score": pooled(d["scores"]),
            "s": d["s"],
            "n": len(d["scores"]),
            "routes": d["routes"],
        }
        for src, d in per.items()
    }


def best_error(rows: list[dict[str, Any]], source: str) -> float:
    mine = [r for r in rows if r["source"] == source]
    m = main_metric(source)
    return min(
        getattr(pooled(Score.from_dict(r[e]["score"]) for r in mine), m)
        for e in ("tesseract", "ppocr")
    )


def ratios(rows: list[dict[str, Any]], rules: RouteRules) -> tuple[dict[str, float], float]:
    """Main error / best engine's main error per source, and total seconds."""
    out = outcome(rows, rules)
    r = {}
    for src, d in out.items():
        best = best_error(rows, src)
        err = getattr(d["score"], main_metric(src))
        r[src] = err / best if best > 0 else (1.0 if err == 0 else float("inf"))
    return r, sum(d["s"] for d in out.values())


def choose(rows: list[dict[str, Any]]) -> RouteRules:
    """The rule of least cost on ``rows`` (see the module docstring); ties go to the
    rule read first in the grid."""
    ppocr_s = sum(r["ppocr"]["s"] + r["features_s"] for r in rows)
    best: tuple[float, RouteRules] | None = None
    for values in itertools.product(*GRID.values()):
        rules = RouteRules(**dict(zip(GRID, values, strict=True)))
        r, seconds = ratios(rows, rules)
        cost = sum(max(1.0, x) for x in r.values()) + TIME_WEIGHT * seconds / ppocr_s
        if best is None or cost < best[0]:
            best = (cost, rules)
    assert best is not None
    return best[1]


def describe(rules: RouteRules) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in dataclasses.asdict(rules).items())


def report(rows: list[dict[str, Any]]) -> None:
    sources = [s for s in SOURCES if any(r["source"] == s for r in rows)]
    print("\nBoth engines on every page (pooled CER / WER / bag-of-words, engine s/page):")
    print("| source | pages | Tesseract fast | s/page | PP-OCR | s/page |")
    print("| --- | --- | --- | --- | --- | --- |")
    for src in sources:
        mine = [r for r in rows if r["source"] == src]
        cells = []
        for e in ("tesseract", "ppocr"):
            s = pooled(Score.from_dict(r[e]["score"]) for r in mine)
            t = sum(r[e]["s"] for r in mine) / len(mine)
            cells += [f"{s.cer:.3f} / {s.wer:.3f} / {s.bow:.3f}", f"{t:.2f}"]
        print(f"| {src} | {len(mine)} | {' | '.join(cells)} |")

    print("\nLeave one source out: rule chosen on the other four, scored on the held-out one")
    print(
        "| held out | rule chosen on the other four | routes | main error "
        "(Tesseract / PP-OCR / routed) | ratio to best | s/page (Tesseract / PP-OCR / routed) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for src in sources:
        train = [r for r in rows if r["source"] != src]
        test = [r for r in rows if r["source"] == src]
        rules = choose(train)
        got = outcome(test, rules)[src]
        m = main_metric(src)
        err = getattr(got["score"], m)
        te = getattr(pooled(Score.from_dict(r["tesseract"]["score"]) for r in test), m)
        pe = getattr(pooled(Score.from_dict(r["ppocr"]["score"]) for r in test), m)
        n = len(test)
        ts = sum(r["tesseract"]["s"] for r in test) / n
        ps = sum(r["ppocr"]["s"] for r in test) / n
        routes = ", ".join(f"{k} {v}" for k, v in sorted(got["routes"].items()))
        print(
            f"| {src} | {describe(rules)} | {routes} | {m} {te:.3f} / {pe:.3f} / {err:.3f} "
            f"| {err / min(te, pe):.2f} | {ts:.2f} / {ps:.2f} / {got['s'] / n:.2f} |"
        )

    rules = choose(rows)
    print(f"\nChosen on all sources: {describe(rules)}")
    default = RouteRules.default()
    for label, rr in (("chosen on all", rules), ("the auto engine's defaults", default)):
        r, seconds = ratios(rows, rr)
        out = outcome(rows, rr)
        print(f"{label}: total {seconds:.0f} engine s over {len(rows)} pages")
        for src in sources:
            d = out[src]
            routes = ", ".join(f"{k} {v}" for k, v in sorted(d["routes"].items()))
            within = "within" if r[src] <= TOLERANCE else "NOT within"
            print(
                f"  {src}: {main_metric(src)} {getattr(d['score'], main_metric(src)):.3f} "
                f"(ratio {r[src]:.2f}, {within} 10%), {d['s'] / d['n']:.2f} s/page, "
                f"routes: {routes}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    data = Path(tempfile.gettempdir()) / "ocrbatch-routing.jsonl"
    ap.add_argument("--data", type=Path, default=data, help="both readings of every page")
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    if args.rebuild or not args.data.is_file():
        build(args.data)
    rows = [json.loads(x) for x in args.data.read_text(encoding="utf-8").splitlines() if x]
    report(rows)


if __name__ == "__main__":
    main()
