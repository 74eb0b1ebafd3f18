"""The engines' own option models (validated at the edges like RunConfig, checked by the
engine's registry entry: ``--engine-opt KEY=VALUE`` and the Tesseract shortcuts)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AutoEngineOptions", "RapidOcrOptions", "StrictModel", "TesseractOptions"]


class StrictModel(BaseModel):
    """Unknown keys refused, values frozen, fields given by name or alias."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TesseractOptions(StrictModel):
    """Options of the Tesseract engine."""

    lang: str = Field("eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
    # PSM 3 (automatic layout) keeps two-column pages in reading order; PSM 6 interleaves.
    psm: int = Field(3, ge=0, le=13)
    # "fast" (tessdata_fast, int8 LSTM) measured ~30% faster than "standard" at about the
    # same accuracy on clean pages, so it is the default.
    model: Literal["fast", "standard"] = "fast"
    tessdata: str | None = None
    # Tesseract's own per-page cooperative timeout; the pool's hard timeout backs it up.
    variables: dict[str, str] = Field(default_factory=dict)


class RapidOcrOptions(StrictModel):
    """Options of the RapidOCR engine (PP-OCR models shipped in the ``rapidocr`` wheel)."""

    # Longest side the page is scaled down to before detection; text lines are cut from
    # that scaled page, so it bounds recognition too. Measured on dev-corpus pages
    # (README, "RapidOCR detection size"): 960 loses small text (oldbooks bag-of-words
    # error 0.087 vs 0.035), 2560 is no better than 2000 and much slower; 2000 it is.
    max_side: int = Field(2000, ge=320, le=20_000)
    # Pages whose shorter side is below this are scaled up for detection (library default).
    det_min_side: int = Field(736, ge=32, le=4096)
    # Text lines recognized per onnxruntime call (lines are sorted by width, then batched).
    rec_batch: int = Field(6, ge=1, le=256)
    # Lines whose recognition score is below this are dropped (library default 0.5).
    text_score: float = Field(0.5, ge=0.0, le=1.0)
    # The line orientation classifier flips upright English lines: off unless pages come
    # in upside down.
    classifier: bool = False
    # What runs the models. OpenVINO measured twice as fast as onnxruntime on the dev
    # machine for the same text within a few characters a page (README, "PP-OCR on the
    # CPU"); auto = OpenVINO when it is installed (the rapidocr extra installs it).
    runtime: Literal["auto", "openvino", "onnxruntime"] = "auto"
    # OpenVINO's arithmetic: auto = its own choice for the CPU, bf16 where the CPU computes
    # bf16 natively (AVX512-BF16, AMX; that is where the speed comes from), f32 elsewhere.
    # f32 gives onnxruntime's text on every CPU, at onnxruntime's speed.
    precision: Literal["auto", "f32", "bf16"] = "auto"


class AutoEngineOptions(StrictModel):
    """Options of the auto engine: each page routed to Tesseract or PP-OCR (see
    ``ocrbatch.engines.routing``; the thresholds were chosen on the dev corpus with each
    source held out in turn, README "The auto engine")."""

    # Force one route for every page (to compare), or auto: decide per page.
    route: Literal["auto", "tesseract", "ppocr"] = "auto"
    # The PP-OCR engine: auto = ppocr-torch where torch sees CUDA, else rapidocr (CPU).
    ppocr: Literal["auto", "rapidocr", "ppocr-torch"] = "auto"
    tesseract: dict[str, Any] = Field(default_factory=dict)  # the Tesseract engine's options
    ppocr_options: dict[str, Any] = Field(default_factory=dict)  # the PP-OCR engine's
    # Pages whose letters are shorter than this (pixels, median) go to PP-OCR.
    min_letter_height: float = Field(16.0, ge=0)
    # ... as do noisy pages (share of 1-2 px specks among ink components) ...
    max_speckle: float = Field(0.3, ge=0, le=1)
    # ... and dim ones ((99th - 1st percentile of grey) / 255).
    min_contrast: float = Field(0.6, ge=0, le=1)
    # Other pages are read by Tesseract first and re-read by PP-OCR when Tesseract's
    # mean word confidence is below this.
    min_tesseract_confidence: float = Field(0.86, ge=0, le=1)
    # Pages PP-OCR reads are first shrunk to letters this high (pixels; 0: never), by at
    # most ppocr_min_scale: as accurate on forms and papers, in less time.
    ppocr_letter_height: float = Field(10.0, ge=0)
    ppocr_min_scale: float = Field(0.7, gt=0, le=1)
