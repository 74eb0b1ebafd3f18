"""Preprocessing: the quality check, each step, auto's choices and the page cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocrbatch.preprocess import PageCache, Preprocessor, cache_key, estimate_skew, measure
from ocrbatch.preprocess import steps as st
from tests.badfiles import font


def _page(scale: float = 1.0, size: tuple[int, int] = (1200, 1600)) -> Image.Image:
    """A clean synthetic text page: lines of 40-px letters on white."""
    im = Image.new("L", size, 255)
    d = ImageDraw.Draw(im)
    face = font(int(40 * scale))
    for i in range(14):
        d.text(
            (60 * scale, (80 + i * 90) * scale), "The quick brown fox jumps over", font=face, fill=0
        )
    return im


def test_clean_page_is_left_untouched() -> None:
    im = _page()
    out, info = Preprocessor("auto").run(im)
    assert out is im and info["steps"] == [] and info["score"] > 0.8
    assert Preprocessor("off").run(im) == (im, {"steps": []})


def test_skew_is_measured_and_corrected() -> None:
    page = _page()
    skewed = page.rotate(-3, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    g = np.asarray(skewed)
    assert estimate_skew(g) == pytest.approx(3.0, abs=0.3)
    assert abs(estimate_skew(np.asarray(page))) <= 0.2
    # a sideways page: its lines run along the columns, the angle is still found
    assert estimate_skew(np.ascontiguousarray(np.rot90(g))) == pytest.approx(3.0, abs=0.3)
    out, info = Preprocessor("auto").run(skewed)
    assert info["steps"] == ["deskew"] and info["deskew_angle"] == pytest.approx(3.0, abs=0.3)
    assert abs(estimate_skew(np.asarray(out))) <= 0.2


def test_low_resolution_page_is_upscaled() -> None:
    small = _page(0.2, (240, 320))
    q = measure(np.asarray(small))
    assert 0 < q.char_height < 12
    out, info = Preprocessor("auto").run(small)
    assert "upscale" in info["steps"] and info["upscale"] > 1
    assert out.width == round(small.width * info["upscale"])


def test_dark_border_is_painted_white_and_uneven_paper_binarized() -> None:
    page = np.asarray(_page()).copy()
    page[:, :90] = 10  # a black scanner edge
    q = measure(page)
    assert q.border > 0.9
    out, done = st.crop_borders(page)
    assert done["crop"]["left"] >= 90 and out[:, :90].min() > 200 and out.shape == page.shape
    # a shadow across the page: binarize keeps the text and whitens the paper
    ramp = np.linspace(0, 140, page.shape[1], dtype=np.float32)
    shaded = np.clip(np.asarray(_page(), np.float32) - ramp, 0, 255).astype(np.uint8)
    assert measure(shaded).unevenness >= 0.3
    out_im, info = Preprocessor("auto").run(Image.fromarray(shaded))
    assert "binarize" in info["steps"]
    arr = np.asarray(out_im)
    assert set(np.unique(arr)) <= {0, 255} and arr[:, -100:].mean() > 200


def test_fixed_list_runs_its_steps_in_canonical_order() -> None:
    rgb = _page().convert("RGB")
    out, info = Preprocessor("binarize,denoise,grayscale").run(rgb)
    assert info["steps"] == ["grayscale", "denoise", "binarize"] and out.mode == "L"


def test_cache_hits_and_evicts_oldest_past_its_cap(tmp_path: Path) -> None:
    cache = PageCache(tmp_path / "c", max_bytes=400_000)
    key = cache_key("h" * 64, 0, {"spec": "auto"})
    assert key != cache_key("h" * 64, 1, {"spec": "auto"})
    assert key != cache_key("h" * 64, 0, {"spec": "off"})
    assert cache.get(key) is None
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300), np.uint8))
    noisy.info["dpi"] = (150.0, 150.0)
    cache.put(key, {"steps": ["deskew"], "deskew_angle": 2.0}, noisy)
    hit = cache.get(key)
    assert hit is not None and hit[0]["deskew_angle"] == 2.0
    assert hit[1] is not None and np.array_equal(np.asarray(hit[1]), np.asarray(noisy))
    assert hit[1].info["dpi"] == (150.0, 150.0)
    cache.put("ab" + key[2:], {"steps": []}, None)  # a decision without an image
    assert cache.get("ab" + key[2:]) == ({"steps": []}, None)
    for i in range(6):  # ~90 KB each: the cap keeps about four
        cache.put(cache_key("x", i, {}), {"steps": ["binarize"]}, noisy)
    assert cache.size() <= 400_000
    assert cache.get(cache_key("x", 5, {})) is not None  # the newest stays
    assert cache.get(key) is None  # the oldest went
