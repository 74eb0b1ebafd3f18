"""The ppocr-torch engine: PP-OCRv4 detection and recognition as torch modules, batched.

Runs on CUDA when there is a GPU (fp16 by default there) and on the CPU otherwise, so the
whole path is tested without a GPU. Pages are detected in batches; the text lines of all
pages of a batch are recognized together, grouped by width. The CPU half of the work
(decoding, size cap, channel order) is :meth:`PpocrTorchEngine.prepare`, which needs
neither torch nor the models, so executors can run it in other processes while the
device works (see :mod:`ocrbatch.engines.batch`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ...config import validate
from ...errors import ConfigError, EngineError
from ...model import PageTask, PageText
from ..base import EngineBase, EngineInfo
from .page import PreparedPage, prepare_page

__all__ = ["PpocrTorchEngine", "PpocrTorchOptions", "default_models"]

_DET_FILE = "ch_PP-OCRv4_det_infer.onnx"
_REC_FILE = "ch_PP-OCRv4_rec_infer.onnx"


class PpocrTorchOptions(BaseModel):
    """Options of the ppocr-torch engine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    # fp16 agrees with fp32 on the recogniser's argmax (issue 6); "auto" = fp16 on CUDA.
    precision: Literal["auto", "fp32", "fp16"] = "auto"
    # Longer side of the page as the detector sees it. 1280 measured as good as 1600 on
    # the dev corpus (bag-of-words error 0.107 vs 0.112, CER 0.477 vs 0.479 on 10 pages,
    # README) at 0.6x the detector's pixels.
    det_side: int = Field(1280, ge=320, le=4096)
    # Pages are capped to this longer side before anything else (crops are cut from it).
    max_side: int = Field(2560, ge=320, le=10000)
    det_batch: int = Field(8, ge=1, le=1024)  # pages per detector call
    rec_columns: int = Field(512 * 320, ge=3200)  # crops x width per recogniser call
    box_thresh: float = Field(0.5, ge=0, le=1)
    unclip_ratio: float = Field(1.6, gt=0, le=5)
    text_score: float = Field(0.5, ge=0, le=1)  # lines below this mean confidence drop
    det_model: str | None = None
    rec_model: str | None = None
    cache_dir: str | None = None


def default_models() -> tuple[Path, Path]:
    """The PP-OCRv4 ONNX models shipped in the rapidocr-onnxruntime 1.4.4 wheel."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "the ppocr-torch engine needs the PP-OCRv4 models of rapidocr-onnxruntime: "
            "pip install 'ocrbatch[gpu]' (or pass det_model= and rec_model=)"
        )
    folder = Path(spec.origin).parent / "models"
    return folder / _DET_FILE, folder / _REC_FILE


@dataclass(slots=True)
class Detected:
    """A detected batch between the two device phases (kept on the device)."""

    prepared: Sequence[PreparedPage]
    pixels: Any  # [1,C,B,H,W] normalized work images, model dtype
    quads: Any  # [N,4,2] float32 corners in work-image pixels
    page: Any  # [N] page index of each quad


class PpocrTorchEngine(EngineBase):
    """PP-OCRv4 (mobile) through torch: batched detection and line recognition."""

    name: ClassVar[str] = "ppocr-torch"
    options_model: ClassVar[type[PpocrTorchOptions]] = PpocrTorchOptions
    memory_per_worker_mb: ClassVar[int] = 1500
    # Tells executors that this engine takes batches (see ocrbatch.engines.batch).
    batched: ClassVar[bool] = True

    def __init__(
        self, options: Mapping[str, Any], *, timeout: float | None = None, threads: int = 1
    ) -> None:
        self.options: PpocrTorchOptions = validate(
            PpocrTorchOptions, dict(options), "ppocr-torch engine"
        )
        self.timeout = timeout
        self._det: Any = None
        self._rec: Any = None
        self._charset: list[str] = []
        self._device: Any = None
        self._dtype: Any = None

    @property
    def batch_size(self) -> int:
        """Pages per device batch."""
        return self.options.det_batch

    @classmethod
    def pages_per_batch(cls, options: Mapping[str, Any]) -> int:
        opts: PpocrTorchOptions = validate(PpocrTorchOptions, dict(options), "ppocr-torch engine")
        return opts.det_batch

    def _models(self) -> tuple[Path, Path]:
        o = self.options
        if o.det_model and o.rec_model:
            det, rec = Path(o.det_model), Path(o.rec_model)
        else:
            ddet, drec = default_models()
            det = Path(o.det_model) if o.det_model else ddet
            rec = Path(o.rec_model) if o.rec_model else drec
        for p in (det, rec):
            if not p.is_file():
                raise ConfigError(f"ppocr-torch model not found: {p}")
        return det, rec

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        """Fail early, in the coordinator: models present, torch and onnx2torch importable."""
        engine = cls(options)
        engine._models()
        for module in ("torch", "onnx", "onnxruntime", "onnx2torch", "cv2"):
            if importlib.util.find_spec(module) is None:
                raise ConfigError(
                    f"the ppocr-torch engine needs {module}: pip install 'ocrbatch[gpu]'"
                )
        if engine.options.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(f"device {engine.options.device!r} asked for, but no CUDA")

    @classmethod
    def info(cls) -> EngineInfo:
        from importlib.metadata import version

        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return EngineInfo(cls.name, f"PP-OCRv4/torch {version('torch')}", ("ch", "en"), device)

    def open(self) -> None:
        import torch

        from .conversion import cache_dir, load_module
        from .ctc import charset_from_metadata

        o = self.options
        want = o.device
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(want)
        on_gpu = self._device.type == "cuda"
        half = o.precision == "fp16" or (o.precision == "auto" and on_gpu)
        self._dtype = torch.float16 if half else torch.float32
        det_path, rec_path = self._models()
        folder = cache_dir(o.cache_dir)
        det, _ = load_module(det_path, (1, 3, 64, 64), folder)
        rec, meta = load_module(rec_path, (2, 3, 48, 64), folder)
        if "character" not in meta:
            raise ConfigError(f"{rec_path} has no character list in its metadata")
        self._charset = charset_from_metadata(meta["character"])
        self._det = det.to(self._device, self._dtype)
        # cudnn.benchmark stays off: batch shapes vary (pages per batch, crop widths),
        # and it would autotune every new shape.
        self._rec = rec.to(self._device, self._dtype)

    def close(self) -> None:
        self._det = self._rec = None

    # -- the CPU half: no torch, no models ---------------------------------------------

    def prepare(self, image: Any, task: PageTask | None = None) -> PreparedPage:
        """CPU preparation of one page (may run in another process than the models)."""
        return prepare_page(image, self.options.max_side)

    # -- the device half -----------------------------------------------------------------

    def recognize(self, image: Any, task: PageTask) -> PageText:
        return self.recognize_batch([self.prepare(image, task)])[0]

    def recognize_batch(self, pages: Sequence[PreparedPage]) -> list[PageText]:
        """Recognize prepared pages, ``batch_size`` at a time on the device."""
        out: list[PageText] = []
        n = self.options.det_batch
        for i in range(0, len(pages), n):
            out.extend(self.read(self.detect(pages[i : i + n])))
        return out

    def detect(self, pages: Sequence[PreparedPage]) -> Detected:
        """Phase 1: upload, detect, find the text quads of each page."""
        import torch

        from .detection import DbParams, det_batch, detect_boxes, mask_and_prob

        if self._det is None:
            raise EngineError("engine used before open()")
        o = self.options
        dev, dt = self._device, self._dtype
        with torch.inference_mode():
            tensors = [_to_chw(p.pixels, dev) for p in pages]
            x, sizes = det_batch(tensors, o.det_side, dt)
            prob = self._det(x)
            mask, probf = mask_and_prob(prob, 0.3)
            params = DbParams(box_thresh=o.box_thresh, unclip_ratio=o.unclip_ratio)
            quads, page, _scores = detect_boxes(probf, mask, sizes, params)
            # Detector pixels -> work-image pixels, clipped to the page, tiny boxes out.
            for i, t in enumerate(tensors):
                sel = page == i
                h, w = sizes[i]
                ph, pw = int(t.shape[1]), int(t.shape[2])
                q = quads[sel]
                q[:, :, 0] = np.clip(np.round(q[:, :, 0] * pw / w), 0, pw - 1)
                q[:, :, 1] = np.clip(np.round(q[:, :, 1] * ph / h), 0, ph - 1)
                quads[sel] = q
            side_w = np.linalg.norm(quads[:, 0] - quads[:, 1], axis=1)
            side_h = np.linalg.norm(quads[:, 0] - quads[:, 3], axis=1)
            keep = (side_w.astype(int) > 3) & (side_h.astype(int) > 3)
            pixels = _stack_pages(tensors, dt)
        return Detected(pages, pixels, quads[keep], page[keep])

    def read(self, det: Detected) -> list[PageText]:
        """Phase 2: cut the line crops of all pages, recognize them, build the pages."""
        import torch

        from .crops import crop_batches, plan_crops
        from .ctc import Decoded, ctc_greedy
        from .layout import TextQuad, assemble_page

        if self._rec is None:
            raise EngineError("engine used before open()")
        plan = plan_crops(det.quads)
        decoded: list[Decoded | None] = [None] * len(plan.widths)
        padded: dict[int, int] = {}
        with torch.inference_mode():
            for rows, crops in crop_batches(det.pixels, det.page, plan, self.options.rec_columns):
                scores = self._rec(crops)
                if scores.shape[-1] != len(self._charset):
                    raise EngineError(
                        f"recogniser has {scores.shape[-1]} classes, dictionary "
                        f"{len(self._charset)}"
                    )
                for r, line in zip(rows, ctc_greedy(scores, self._charset), strict=True):
                    decoded[int(r)] = line
                    padded[int(r)] = int(crops.shape[-1])
        per_page: list[list[TextQuad]] = [[] for _ in det.prepared]
        for k, d in enumerate(decoded):
            # RapidOCR's filter: a line whose mean character confidence is low is noise.
            if d is None or not d.text or float(d.probs.mean()) < self.options.text_score:
                continue
            p = det.prepared[int(det.page[k])]
            corners = plan.quads[k] / p.scale
            columns = float(plan.widths[k]) / padded[k]
            per_page[int(det.page[k])].append(TextQuad(corners, d, columns))
        return [
            assemble_page(quads, p.width, p.height, p.dpi)
            for quads, p in zip(per_page, det.prepared, strict=True)
        ]


def _to_chw(pixels: Any, device: Any) -> Any:
    import torch

    t = torch.from_numpy(pixels)
    t = t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)
    return t.to(device, non_blocking=True)


def _stack_pages(tensors: Sequence[Any], dtype: Any) -> Any:
    """Work images padded into one volume [1,C,B,H,W] (the layout crop sampling reads),
    normalized to [-1, 1]."""
    import torch

    c = max(int(t.shape[0]) for t in tensors)
    h = max(int(t.shape[1]) for t in tensors)
    w = max(int(t.shape[2]) for t in tensors)
    out = torch.ones((1, c, len(tensors), h, w), dtype=dtype, device=tensors[0].device)
    for i, t in enumerate(tensors):
        out[0, :, i, : t.shape[1], : t.shape[2]] = (t.to(dtype) / 127.5 - 1.0).expand(c, -1, -1)
    return out
