"""The preprocessing of one page: measure, choose the steps, run them in order.

``auto`` runs the quality check and only the steps a page needs (a clean page goes to
the engine untouched, exactly as it was decoded); a fixed list runs its steps on every
page; ``off`` does nothing.

``auto`` also reviews a page whose first reading has low confidence (clean pages of the
dev corpus all read at 0.90 or more, noisy ones at 0.55-0.89): it reads it a second
time at the other scale (enlarged 1.5x, or as it was if it had been enlarged) and keeps
the reading with the higher confidence; a page still unsure is checked with Tesseract's
OSD (orientation), which costs about as much as a reading, and read again upright.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from ..model import PageText
from ..specs import parse_preprocess
from ..tools.osd import detect_orientation
from . import steps as st
from .quality import Quality, measure

__all__ = ["AUTO_RULES", "Preprocessor"]

# When auto runs a step (thresholds on the quality check; see bench/preprocess.py).
AUTO_RULES: dict[str, float] = {
    "upscale_below_height": 12.0,  # letters shorter than this (pixels) are enlarged
    "review_below_confidence": 0.85,  # a first reading below this gets a second one
    "review_upscale": 1.5,  # ... at this scale (measured better than 2x on funsd, sroie)
    "deskew_min_angle": 0.6,  # degrees; Tesseract copes with less on its own
    "crop_min_border": 0.35,  # share of an edge band that is dark
    "denoise_min_speckle": 0.45,  # share of ink components that are 1-2 px specks
    "binarize_min_unevenness": 0.3,  # background spread (shadows, stains)
    "reorient_below_confidence": 0.55,  # mean word confidence of the first OCR pass
    "reorient_min_osd_confidence": 2.0,  # Tesseract OSD's own confidence scale
}


class Preprocessor:
    """Preprocessing as configured by a ``--preprocess`` spec (validated by RunConfig)."""

    def __init__(self, spec: str = "auto") -> None:
        self.spec = spec
        self.mode, self.steps = parse_preprocess(spec)

    @property
    def active(self) -> bool:
        return self.mode != "off"

    @property
    def reviews_after_ocr(self) -> bool:
        """auto: a low-confidence reading gets a second one (see the module docstring)."""
        return self.mode == "auto" and bool({"upscale", "orientation"} & set(self.steps))

    def review(
        self,
        page: PageText,
        image: Image.Image,
        original: Callable[[], Image.Image],
        recognize: Callable[[Image.Image], PageText],
        info: dict[str, Any],
    ) -> tuple[PageText, Image.Image | None]:
        """The better reading of a low-confidence page, and its image when that is not
        ``image`` (None when the first reading stands). ``info`` records what was tried."""
        r = AUTO_RULES
        info["reviewed"] = True
        if page.confidence >= r["review_below_confidence"]:
            return page, None
        better: Image.Image | None = None
        if "upscale" in self.steps:
            factor = float(info.get("upscale", 1.0))
            if factor > 1.0:
                alt, tried, steps = original(), 1.0, []
            else:
                g, done = st.upscale(st.grayscale(image), r["review_upscale"])
                alt, tried = _with_dpi(Image.fromarray(g), image, done["upscale"]), done["upscale"]
                steps = [*info["steps"], "upscale"]
            again = recognize(alt)
            info["second_reading"] = {
                "upscale": tried,
                "confidence": [round(page.confidence, 3), round(again.confidence, 3)],
            }
            if again.confidence > page.confidence:
                page, image, better = again, alt, alt
                info["steps"], info["upscale"] = steps, tried
        if "orientation" in self.steps and page.confidence < r["reorient_below_confidence"]:
            turned = self.reorient(image)
            if turned is not None:
                upright, oinfo = turned
                again = recognize(upright)
                info["orientation_tried"] = oinfo["orientation"]
                if _strength(again) > _strength(page):
                    page, better = again, upright
                    info.update(oinfo)
                    info["steps"] = [*info["steps"], "orientation"]
        return page, better

    def params(self) -> dict[str, Any]:
        """Everything that decides the output image (the cache key's part)."""
        return {
            "spec": self.spec,
            "rules": AUTO_RULES,
            "target_height": st.TARGET_HEIGHT,
            "max_upscale": st.MAX_UPSCALE,
        }

    def choose(self, q: Quality, colour: bool) -> list[str]:
        """The steps to run on a page with quality ``q``."""
        if self.mode == "fixed":
            return [s for s in self.steps if s != "grayscale" or colour]
        if self.mode != "auto":
            return []
        r = AUTO_RULES
        want = {
            "crop": q.border >= r["crop_min_border"],
            "deskew": abs(q.skew) >= r["deskew_min_angle"],
            "denoise": q.speckle >= r["denoise_min_speckle"],
            "upscale": 0 < q.char_height < r["upscale_below_height"],
            "binarize": q.unevenness >= r["binarize_min_unevenness"],
        }
        chosen = [s for s in self.steps if want.get(s)]
        if chosen and colour and "grayscale" in self.steps:
            chosen.insert(0, "grayscale")
        return chosen

    def run(self, image: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
        """The preprocessed page (the same object when nothing was done) and what was
        done: steps, quality check, deskew angle, upscale factor, seconds."""
        t0 = time.perf_counter()
        if not self.active:
            return image, {"steps": []}
        g = st.grayscale(image)
        q = measure(g, skew="deskew" in self.steps)
        chosen = self.choose(q, colour=image.mode == "RGB")
        info: dict[str, Any] = {"quality": q.as_dict(), "score": round(q.score, 3)}
        if not chosen:
            info["steps"] = []
            info["preprocess_s"] = round(time.perf_counter() - t0, 4)
            return image, info
        dpi = _dpi(image)
        for step in chosen:
            if step == "crop":
                g, done = st.crop_borders(g)
            elif step == "orientation":
                g, done = _orient(g)
            elif step == "deskew":
                g, done = st.deskew(g, q.skew)
            elif step == "denoise":
                g, done = st.denoise(g)
            elif step == "upscale":
                g, done = st.upscale(g, st.upscale_factor(q.char_height))
                if dpi:
                    dpi *= done["upscale"]
            elif step == "binarize":
                scale = g.shape[0] / max(1, image.height)
                g, done = st.binarize(g, q.char_height * scale)
            else:  # grayscale: already done by st.grayscale above
                done = {}
            info.update(done)
        info["steps"] = chosen
        out = Image.fromarray(np.ascontiguousarray(g), mode="L")
        if dpi:
            out.info["dpi"] = (dpi, dpi)
        info["preprocess_s"] = round(time.perf_counter() - t0, 4)
        return out, info

    def reorient(self, image: Image.Image) -> tuple[Image.Image, dict[str, Any]] | None:
        """The page turned upright when OSD is confident it is not; else None."""
        o = detect_orientation(image)
        if o is None or o.rotate == 0:
            return None
        if o.confidence < AUTO_RULES["reorient_min_osd_confidence"]:
            return None
        out = image.rotate(o.rotate, expand=True)
        if "dpi" in image.info:
            out.info["dpi"] = image.info["dpi"]
        return out, {"orientation": o.rotate, "orientation_confidence": round(o.confidence, 2)}


def _strength(page: PageText) -> float:
    """How much confidently read text a reading has (characters weighted by confidence):
    a sideways reading has fewer, less sure words than the upright one."""
    return sum(w.confidence * len(w.text) for w in page.words)


def _with_dpi(out: Image.Image, like: Image.Image, factor: float) -> Image.Image:
    dpi = _dpi(like)
    if dpi:
        out.info["dpi"] = (dpi * factor, dpi * factor)
    return out


def _orient(g: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    o = detect_orientation(Image.fromarray(g))
    if o is None or o.confidence < AUTO_RULES["reorient_min_osd_confidence"]:
        return g, {"orientation": 0}
    return st.rotate_quarter(g, o.rotate), {
        "orientation": o.rotate,
        "orientation_confidence": round(o.confidence, 2),
    }


def _dpi(image: Image.Image) -> float | None:
    dpi = image.info.get("dpi")
    if not dpi:
        return None
    return float(dpi[0] if isinstance(dpi, tuple) else dpi)
