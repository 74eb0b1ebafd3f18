"""The page text the Tesseract engine builds in its walk over the results is Tesseract's
own ``GetUTF8Text``, to the byte (engines/tesseract.py ``_layout``): real Tesseract on
real pages, with text blocks, paragraphs, an image block and rules (the UNLV page), at
several page segmentation modes, and a blank page."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ocrbatch.config import TesseractOptions
from ocrbatch.engines.tesseract import _layout, resolve_tessdata
from ocrbatch.tools.images import load_image
from ocrbatch.tools.tessimage import set_image

tesserocr = pytest.importorskip("tesserocr")

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PAGES = ["phototest.tif", "eurotext.tif", "unlv_8071_093_3B.tif", "arxiv_1805_09876_p1.jpg"]


def _both(api: object, image: Image.Image) -> tuple[str, str | None]:
    set_image(api, image)
    assert api.Recognize()
    try:
        own = api.GetUTF8Text()
    except RuntimeError:  # tesserocr: "No text returned"
        own = ""
    return own, _layout(api, tesserocr)[1]


@pytest.fixture(scope="module")
def api():  # one API for the module: opening one reads the model
    path = str(resolve_tessdata(TesseractOptions())) + "/"
    with tesserocr.PyTessBaseAPI(path=path, lang="eng", oem=tesserocr.OEM.LSTM_ONLY) as a:
        yield a


@pytest.mark.parametrize(
    ("name", "psm"),
    [(p, 3) for p in PAGES] + [("unlv_8071_093_3B.tif", 6), ("phototest.tif", 11)],
)
def test_the_walk_writes_tesseracts_own_text(api: object, name: str, psm: int) -> None:
    api.SetPageSegMode(psm)
    own, walked = _both(api, load_image(str(SAMPLES / name), 0, max_pixels=10**9))
    assert own.count("\n") >= 5
    assert walked == own


def test_which_scripts_get_tesseracts_own_text(api: object) -> None:
    """A page read as Hebrew, Arabic or CJK text gets Tesseract's own text, not the
    walk's (here eng reads the page, so the check is the script test's alone)."""
    from ocrbatch.engines.tesseract import _OWN_TEXT_SCRIPTS

    for text in ("שלום", "سلام", "東京", "한국", "ภาษาไทย", "\uff21\uff22"):
        assert _OWN_TEXT_SCRIPTS.search(f"a {text} b")
    latin = "\u2018quoted\u2019 \u2014 \u20ac5 \ufb01ne"  # quotes, dash, euro, ligature
    for text in (latin, "Ελληνικά", "кириллица", "naïve café"):
        assert not _OWN_TEXT_SCRIPTS.search(text)


def test_a_blank_page_is_empty_text(api: object) -> None:
    api.SetPageSegMode(3)
    assert _both(api, Image.new("L", (800, 600), 255)) == ("", "")


def test_the_corpus_pages_too(api: object, corpus: Path) -> None:
    """The first five pages of each source of the dev corpus (../shared, in CI): receipts,
    forms, old books, papers. (All 86 pages were compared as the walk was written.)"""
    api.SetPageSegMode(3)
    differ = []
    images = [
        image
        for source in sorted(p for p in corpus.iterdir() if p.is_dir())
        for image in sorted(p for p in source.iterdir() if p.suffix in {".png", ".jpg", ".tif"})[:5]
    ]
    assert len(images) >= 20
    for image in images:
        own, walked = _both(api, load_image(str(image), 0, max_pixels=10**9))
        if walked != own:
            differ.append(image.name)
    assert not differ


def test_preserve_interword_spaces_keeps_tesseracts_own_text() -> None:
    """Tesseract then writes runs of spaces as they were on the page, which the walk
    does not: the engine asks Tesseract for its text."""
    from ocrbatch.engines.tesseract import TesseractEngine
    from ocrbatch.model import PageTask

    engine = TesseractEngine({"variables": {"preserve_interword_spaces": "1"}})
    engine.open()
    try:
        image = load_image(str(SAMPLES / "phototest.tif"), 0, max_pixels=10**9)
        page = engine.recognize(image, PageTask(1, 1, 1, "p", 0, 1))
        assert page.text == engine._api.GetUTF8Text()
        assert engine._own_spacing
    finally:
        engine.close()
