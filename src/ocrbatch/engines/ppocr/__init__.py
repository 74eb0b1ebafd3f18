"""PP-OCRv4 through torch: batched detection and recognition on CUDA or the CPU.

The pieces are plain functions over arrays and tensors so that another PP-OCR engine
(RapidOCR) can share them: :mod:`.page` (CPU preparation, torch-free), :mod:`.detection`
(DB post-processing), :mod:`.crops` (line crops), :mod:`.ctc` (decoding), :mod:`.layout`
(PageText), :mod:`.conversion` (ONNX -> torch, cached).
"""

from __future__ import annotations

from .engine import PpocrTorchEngine, PpocrTorchOptions, default_models
from .page import PreparedPage, prepare_page

__all__ = [
    "PpocrTorchEngine",
    "PpocrTorchOptions",
    "PreparedPage",
    "default_models",
    "prepare_page",
]
