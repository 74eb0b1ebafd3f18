"""PP-OCR on the CPU, step by step: one page's time and accuracy with each runtime,
precision and (tried, not adopted) int8 recogniser, one process, one thread; and the
recogniser's cost per text line against batch size and line width.

``steps``: the first N pages of each corpus source, read by the rapidocr engine with
onnxruntime, OpenVINO f32, OpenVINO at its own precision (bf16 on a CPU with native
bf16), and OpenVINO with an int8 recogniser (asymmetric u8 activations, or symmetric s8)
made here: onnx's version converter to opset 13 (OpenVINO reads per-channel
DequantizeLinear only from opset 13), then onnxruntime's static QDQ quantization of the
Conv and MatMul nodes (per-channel s8 weights, MinMax ranges) calibrated on up to 12
line crops of each of the next 3 pages of each source (so never on a measured page).
Needs onnx (the gpu extra). Pooled CER and bag-of-words error per source, detection and
recognition seconds per page.

``batch``: milliseconds per line for batches of 1-24 lines 320 and 960 px wide (48 px
high, as the recogniser takes them), OpenVINO at its own precision.

Usage:
  python bench/ppocr_cpu.py steps --per-source 2
  python bench/ppocr_cpu.py batch
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from corpus import SOURCES, Page, pages, reference
from ocrbatch.accuracy import Score, pooled, score
from ocrbatch.engines.rapidocr import RapidOcrEngine, model_files, page_from_output, to_array
from ocrbatch.engines.runtime import OpenVinoSession
from ocrbatch.tools.images import load_image


def _bgr(image: Any) -> Any:
    import cv2

    arr = to_array(image)
    return cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR) if arr.ndim == 2 else arr


def calibration_crops(chosen: list[Page]) -> list[Any]:
    """Line crops (as RapidOCR cuts them) of ``chosen`` pages, 12 at most per page."""
    engine = RapidOcrEngine({"runtime": "onnxruntime"})
    engine.open()
    ocr = engine._ocr
    crops: list[Any] = []
    for p in chosen:
        img, record = ocr.preprocess_img(_bgr(load_image(str(p.image), max_pixels=10**9)))
        found, _det = ocr.detect_and_crop(img, record)
        picked = np.random.default_rng(0).choice(len(found), min(12, len(found)), replace=False)
        crops += [found[i] for i in sorted(picked)]
    engine.close()
    return crops


def int8_recogniser(folder: Path, crops: list[Any], symmetric: bool) -> Path:
    import cv2
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    opset13 = folder / "rec13.onnx"
    if not opset13.exists():
        model = onnx.load(str(model_files()["rec"]))
        onnx.save(version_converter.convert_version(model, 13), str(opset13))

    def norm(img: Any) -> Any:
        h, w = img.shape[:2]
        r = cv2.resize(img, (max(1, math.ceil(48 * w / h)), 48)).astype("float32")
        return ((r.transpose(2, 0, 1) / 255 - 0.5) / 0.5)[None]

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([{"x": norm(c)} for c in crops])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.batches, None)

    out = folder / f"rec_int8_{'sym' if symmetric else 'asym'}.onnx"
    quantize_static(
        str(opset13), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=["Conv", "MatMul"],
        extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
    )  # fmt: skip
    return out


def steps(per_source: int) -> None:
    corpus = pages()
    measured: list[Page] = []
    calib: list[Page] = []
    for src in SOURCES:
        mine = [p for p in corpus if p.source == src]
        measured += mine[:per_source]
        calib += mine[per_source : per_source + 3]
    variants: dict[str, RapidOcrEngine] = {
        "onnxruntime": RapidOcrEngine({"runtime": "onnxruntime"}),
        "openvino f32": RapidOcrEngine({"runtime": "openvino", "precision": "f32"}),
        "openvino (own precision)": RapidOcrEngine({"runtime": "openvino"}),
    }
    with tempfile.TemporaryDirectory(prefix="ocrbatch-int8-") as d:
        crops = calibration_crops(calib)
        for sym in (False, True):
            path = int8_recogniser(Path(d), crops, sym)
            engine = RapidOcrEngine({"runtime": "openvino"})
            engine.open()
            engine._ocr.text_rec.session = OpenVinoSession(path)
            variants[f"openvino, int8 recogniser ({'sym' if sym else 'asym'})"] = engine
        for engine in variants.values():
            if engine._ocr is None:
                engine.open()
        print(f"{len(crops)} calibration crops; runtimes: " + ", ".join(
            f"{k}: {e.runtime}" for k, e in variants.items()))  # fmt: skip
        got: dict[tuple[str, str], list[tuple[Score, float, float, float]]] = {}
        for p in measured:
            image = load_image(str(p.image), max_pixels=10**9)
            for label, engine in variants.items():  # interleaved: the load hits all alike
                t = time.perf_counter()
                out = engine._ocr(to_array(image))
                seconds = time.perf_counter() - t
                elapse = list(getattr(out, "elapse_list", None) or [0.0, 0.0, 0.0])
                page = page_from_output(out, image.width, image.height)
                s = score(page.text, reference(p), casefold=p.casefold, ignore="~")
                got.setdefault((p.source, label), []).append(
                    (s, seconds, float(elapse[0] or 0), float(elapse[2] or 0))
                )
    print("\n| source | pages | runtime | CER | bag-of-words | s/page | detection | recognition |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for src in SOURCES:
        for label in variants:
            rows = got.get((src, label))
            if not rows:
                continue
            s = pooled(r[0] for r in rows)
            n = len(rows)
            t, det, rec = (sum(r[k] for r in rows) / n for k in (1, 2, 3))
            print(
                f"| {src} | {n} | {label} | {s.cer:.3f} | {s.bow:.3f} | {t:.2f} | {det:.2f} "
                f"| {rec:.2f} |"
            )


def batch() -> None:
    session = OpenVinoSession(model_files()["rec"])
    print(f"OpenVINO {session.precision}, one thread: ms per line")
    for width in (320, 960):
        for n in (1, 6, 12, 24):
            x = np.random.default_rng(0).uniform(-1, 1, (n, 3, 48, width)).astype(np.float32)
            session(x)
            rounds = max(1, 24 // n)
            t = time.perf_counter()
            for _ in range(rounds):
                session(x)
            ms = (time.perf_counter() - t) / rounds / n * 1000
            print(f"  width {width}, batch {n}: {ms:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["steps", "batch"])
    ap.add_argument("--per-source", type=int, default=2)
    args = ap.parse_args()
    if args.what == "steps":
        steps(args.per_source)
    else:
        batch()


if __name__ == "__main__":
    main()
