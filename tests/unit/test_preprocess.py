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


@pytest.mark.parametrize(
    ("mode", "dpi"),
    [
        ("L", None),
        ("L", (299.9994, 299.9994)),
        ("1", (300.0, 300.0)),
        ("RGB", (150, 150)),
        ("RGB", (72.0, 144.0)),
    ],
)
def test_cache_gives_back_the_page_exactly_as_put(
    tmp_path: Path, mode: str, dpi: tuple[float, float] | None
) -> None:
    """A hit is the page a fresh preprocessing made: pixels, mode, size, dpi (exact, both
    axes) and nothing else in ``info``, as a plain in-memory image (issue 10: a page
    decoded from the cache's PNG went to Tesseract differently)."""
    rng = np.random.default_rng(1)
    page = Image.fromarray(rng.integers(0, 256, (37, 53, 3), np.uint8)).convert(mode)
    if dpi is not None:
        page.info["dpi"] = dpi
    cache = PageCache(tmp_path / "c", max_bytes=10_000_000)
    key = cache_key("h" * 64, 0, {"spec": "auto"})
    cache.put(key, {"steps": ["upscale"], "upscale": 1.5, "dpi": 100.0}, page)
    hit = cache.get(key)
    assert hit is not None
    info, image = hit
    assert info == {"steps": ["upscale"], "upscale": 1.5, "dpi": 100.0}
    assert image is not None and type(image) is Image.Image and image.format is None
    assert (image.mode, image.size) == (page.mode, page.size)
    assert image.tobytes() == page.tobytes()
    assert image.info == page.info
    # a PNG that is not the page recorded (damaged, replaced) is a miss, not a wrong page
    png = next((tmp_path / "c").rglob("*.png"))
    page.resize((10, 10)).save(png)
    assert cache.get(key) is None


def test_a_page_reads_the_same_from_the_cache(tmp_path: Path) -> None:
    """Cold then warm through the pipeline (fake engine): the same page info apart from
    timings and the hit/miss marker; the page's dpi is that of the file, not of the
    enlarged page the cache holds."""
    from ocrbatch import pipeline
    from ocrbatch.model import PageTask

    path = tmp_path / "small.png"
    _page(0.2, (240, 320)).save(path, dpi=(100, 100))
    spec = pipeline.WorkerSpec(engine="fake", cache_dir=str(tmp_path / "cache"))
    task = PageTask(1, 1, 1, str(path), 0, 1, content_hash="c" * 64)
    pipeline.init_worker(spec, ignore_sigint=False)
    try:
        cold, warm = pipeline.process_page(task), pipeline.process_page(task)
    finally:
        pipeline.close_worker()
    assert cold.ok and warm.ok and cold.page == warm.page

    def facts(info: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in info.items() if k != "cache" and not k.endswith("_s")}

    assert (cold.info["cache"], warm.info["cache"]) == ("miss", "hit")
    assert "upscale" in cold.info["steps"] and cold.info["dpi"] == 100.0
    assert facts(cold.info) == facts(warm.info)
