"""RapidOCR: PaddleOCR's PP-OCR models on onnxruntime, from the ``rapidocr`` wheel.

``rapidocr`` 3.x ships its default detection and recognition models inside its wheel and
runs offline; we pass those files explicitly, so the library's download code is never
reached (nothing is downloaded at run time). Measured on the dev corpus it ran about 25%
faster than ``rapidocr-onnxruntime`` 1.4.4 (PP-OCRv4), so it is the one we depend on
(extra ``ocrbatch[rapidocr]``).

One ``RapidOCR`` object per worker, built in :meth:`RapidOcrEngine.open`; the models
run on OpenVINO when it is installed (``runtime``: twice as fast here, see
:mod:`.runtime`), else on onnxruntime, with ``threads`` threads (1 per worker in a pool,
so N workers fill N cores without oversubscribing them). The line-orientation
classifier is off by default: it flips upright English lines. Text lines are recognized
``rec_batch`` at a time.

The pieces around the library call are plain functions so that another engine on the
same models (the GPU engine) reuses them: :func:`rapidocr_params` (configuration),
:func:`to_array` (pre-processing), :func:`page_from_output` (post-processing onto
:class:`~ocrbatch.model.PageText` with the reading order of :mod:`.layout`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..config import RapidOcrOptions
from ..errors import ConfigError, EngineError
from ..model import Line, PageTask, PageText, Word
from ..tools.images import image_dpi
from .base import EngineBase, EngineInfo
from .layout import box_of, page_blocks, page_text, word
from .runtime import OpenVinoSession, openvino_available, openvino_version

__all__ = [
    "RapidOcrEngine",
    "model_files",
    "page_from_output",
    "rapidocr_params",
    "require_rapidocr",
    "resolve_runtime",
    "to_array",
]

INSTALL_HINT = "install the extra: pip install 'ocrbatch[rapidocr]'"


def require_rapidocr() -> Any:
    """The ``rapidocr`` module, or a ConfigError that says how to install it."""
    try:
        import onnxruntime  # noqa: F401 - rapidocr needs it but does not depend on it
        import rapidocr
    except ImportError as exc:
        missing = exc.name or "rapidocr"
        raise ConfigError(
            f"the rapidocr engine needs {missing}, which is not installed: {INSTALL_HINT}"
        ) from None
    return rapidocr


def model_files() -> dict[str, Path]:
    """The detection and recognition models shipped in the ``rapidocr`` wheel."""
    rapidocr = require_rapidocr()
    folder = Path(rapidocr.__file__).parent / "models"
    found = {}
    for kind in ("det", "rec"):
        files = sorted(folder.glob(f"*_{kind}_*.onnx"))
        if len(files) != 1:
            raise ConfigError(
                f"expected one {kind} model in {folder}, found {len(files)} "
                f"(reinstall rapidocr: {INSTALL_HINT})"
            )
        found[kind] = files[0]
    cls = sorted(folder.glob("*_cls_*.onnx"))
    if cls:
        found["cls"] = cls[0]
    return found


def resolve_runtime(options: RapidOcrOptions) -> str:
    """``openvino`` or ``onnxruntime``: what ``runtime=auto`` means on this machine."""
    if options.runtime == "auto":
        return "openvino" if openvino_available() else "onnxruntime"
    if options.runtime == "openvino" and not openvino_available():
        raise ConfigError(f"runtime=openvino needs the openvino package: {INSTALL_HINT}")
    return options.runtime


def rapidocr_params(
    options: RapidOcrOptions,
    *,
    threads: int = 1,
    models: Mapping[str, Path] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """RapidOCR's configuration for our options: shipped models, ``threads`` onnxruntime
    threads, our own score filter (the library's is off, see :func:`page_from_output`).
    ``extra`` adds or overrides RapidOCR settings (e.g. another execution provider)."""
    m = models or model_files()
    params: dict[str, Any] = {
        "Global.use_cls": options.classifier,
        "Global.log_level": "error",
        "Global.max_side_len": options.max_side,
        "Global.text_score": 0.0,
        "Global.return_word_box": True,
        "Det.model_path": str(m["det"]),
        "Det.limit_side_len": options.det_min_side,
        "Rec.model_path": str(m["rec"]),
        "Rec.rec_batch_num": options.rec_batch,
        "EngineConfig.onnxruntime.intra_op_num_threads": max(1, threads),
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    params.update(extra or {})
    if options.classifier:
        if "cls" not in m:
            raise ConfigError("classifier=true but no cls model ships with this rapidocr")
        params["Cls.model_path"] = str(m["cls"])
    return params


def to_array(image: Any) -> Any:
    """A PIL page as the uint8 array RapidOCR takes: grey stays 2-D, colour becomes BGR."""
    import numpy as np

    if image.mode in ("1", "L"):
        return np.ascontiguousarray(np.asarray(image.convert("L")))
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def _split_words(text: str, score: float, quad: Sequence[Sequence[float]]) -> list[Word]:
    """Word boxes by character count along the line's quadrilateral (the fallback when
    the recognizer gives no per-word positions)."""
    tokens = text.split()
    total = max(1, len(text))
    (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = ((float(x), float(y)) for x, y in quad[:4])
    out = []
    pos = 0
    for tok in tokens:
        start = text.index(tok, pos)
        end = start + len(tok)
        pos = end
        a, b = start / total, end / total

        def lerp(p: tuple[float, float], q: tuple[float, float], t: float) -> tuple[float, float]:
            return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)

        poly = [
            lerp((tlx, tly), (trx, try_), a),
            lerp((tlx, tly), (trx, try_), b),
            lerp((blx, bly), (brx, bry), b),
            lerp((blx, bly), (brx, bry), a),
        ]
        out.append(word(tok, round(score, 4), poly))
    return out


def _line_words(text: str, score: float, quad: Sequence[Sequence[float]], found: Any) -> list[Word]:
    """Word boxes from the recognizer's per-word (per-character for CJK) positions,
    grouped into the line's space-separated tokens, when they account for the whole
    line; otherwise spread along the line (:func:`_split_words`)."""
    items = [w for w in (found or ()) if isinstance(w, (tuple, list)) and len(w) == 3]
    if not items or any(w[2] is None or len(w[2]) < 4 for w in items):
        return _split_words(text, score, quad)
    words: list[Word] = []
    queue = [(str(t).replace(" ", ""), float(sc), poly) for t, sc, poly in items]
    queue = [q for q in queue if q[0]]
    for token in text.split():
        got, parts = "", []
        while queue and len(got) < len(token):
            part = queue.pop(0)
            got += part[0]
            parts.append(part)
        if got != token:  # the positions do not line up with the text: do not guess
            return _split_words(text, score, quad)
        confs = [c if math.isfinite(c) else score for _, c, _ in parts]
        first, last = parts[0][2], parts[-1][2]
        poly = [first[0], last[1], last[2], first[3]]
        pts = [pt for _, _, pl in parts for pt in pl]
        w = word(token, round(min(1.0, max(0.0, sum(confs) / len(confs))), 4), poly)
        words.append(Word(w.text, box_of(pts), w.confidence, w.polygon))
    return words if not queue else _split_words(text, score, quad)


def page_from_output(
    output: Any, width: int, height: int, *, dpi: float | None = None, text_score: float = 0.5
) -> PageText:
    """Map a RapidOCR result (boxes, texts, scores, word results) onto PageText.

    Lines scoring under ``text_score`` are dropped here rather than in the library,
    whose own filter can misalign word results with their lines.
    """
    boxes = getattr(output, "boxes", None)
    txts = getattr(output, "txts", None)
    if boxes is None or txts is None or len(txts) == 0:
        return PageText(text="", confidence=0.0, width=width, height=height, dpi=dpi)
    scores = list(getattr(output, "scores", None) or [1.0] * len(txts))
    words_found = list(getattr(output, "word_results", None) or ())
    aligned = len(words_found) == len(txts)
    lines: list[Line] = []
    for i, (quad, raw, score) in enumerate(zip(boxes, txts, scores, strict=False)):
        text = " ".join(str(raw).split())
        s = float(score)
        if not text or s < text_score:
            continue
        pts = [(float(x), float(y)) for x, y in quad]
        words = _line_words(text, s, pts, words_found[i] if aligned else None)
        lines.append(Line(tuple(words), box_of(pts), round(s, 4)))
    blocks = page_blocks(lines)
    all_words = [w for ln in lines for w in ln.words]
    conf = sum(w.confidence for w in all_words) / len(all_words) if all_words else 0.0
    return PageText(
        text=page_text(blocks),
        confidence=round(conf, 4),
        width=width,
        height=height,
        blocks=blocks,
        dpi=dpi,
    )


class RapidOcrEngine(EngineBase):
    """PP-OCR text detection and recognition through RapidOCR on onnxruntime (CPU)."""

    name: ClassVar[str] = "rapidocr"
    options_model: ClassVar[type[RapidOcrOptions]] = RapidOcrOptions
    # Measured: a worker's RSS is 600-700 MB after a 300-dpi page (max_side 2000-2560).
    memory_per_worker_mb: ClassVar[int] = 700
    # Imported once in the forkserver (cv2, onnxruntime, omegaconf come with it); the
    # models and onnxruntime sessions are made in each worker's open(), after the fork.
    preload: ClassVar[tuple[str, ...]] = ("rapidocr",)

    def __init__(
        self, options: Mapping[str, Any], *, timeout: float | None = None, threads: int = 1
    ) -> None:
        self.options = RapidOcrOptions(**options)
        self.timeout = timeout
        self.threads = threads
        self._ocr: Any = None

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        """Fail early, in the coordinator, if the extra or its models are missing."""
        opts = RapidOcrOptions(**options)
        rapidocr_params(opts)
        resolve_runtime(opts)

    @classmethod
    def info(cls) -> EngineInfo:
        import onnxruntime

        rapidocr = require_rapidocr()
        models = model_files()
        version = (
            f"{rapidocr.__version__ if hasattr(rapidocr, '__version__') else _dist_version()}"
            f" ({models['det'].stem.split('_det_')[0]})"
        )
        # The PP-OCR "ch" recognition model reads Chinese and Latin script (English).
        if resolve_runtime(RapidOcrOptions()) == "openvino":
            device = f"cpu (openvino {openvino_version()})"
        else:
            device = f"cpu (onnxruntime {onnxruntime.__version__})"
        return EngineInfo(cls.name, version, ("ch", "en"), device)

    @property
    def runtime(self) -> str:
        """What runs the models once open: ``onnxruntime`` or ``openvino <precision>``."""
        if self._ocr is None:
            return resolve_runtime(self.options)
        rec = self._ocr.text_rec  # None until the first page on onnxruntime (lazy models)
        if rec is not None and isinstance(rec.session, OpenVinoSession):
            return f"openvino {rec.session.precision}"
        return "onnxruntime"

    def open(self) -> None:
        rapidocr = require_rapidocr()
        runtime = resolve_runtime(self.options)
        self._ocr = rapidocr.RapidOCR(params=rapidocr_params(self.options, threads=self.threads))
        if runtime == "openvino":
            # RapidOCR builds its models lazily; build them now (onnxruntime reads the
            # character list from the model's metadata), then run both on OpenVINO.
            self._ocr._load_det_model()
            self._ocr._load_rec_model()
            models = model_files()
            for part, kind in ((self._ocr.text_det, "det"), (self._ocr.text_rec, "rec")):
                part.session = OpenVinoSession(
                    models[kind], threads=self.threads, precision=self.options.precision
                )

    def close(self) -> None:
        self._ocr = None

    def recognize(self, image: Any, task: PageTask) -> PageText:
        if self._ocr is None:
            raise EngineError("engine used before open()")
        output = self._ocr(to_array(image))
        w, h = image.size
        return page_from_output(
            output, w, h, dpi=image_dpi(image), text_score=self.options.text_score
        )


def _dist_version() -> str:
    from importlib.metadata import version

    return version("rapidocr")
