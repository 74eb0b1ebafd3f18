"""The auto engine's routing decisions on synthetic pages drawn with the repo's font.

No corpus and no timing: what a page looks like decides its route, and the route and its
reason come back with the page (its info).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ocrbatch.engines import base
from ocrbatch.engines.routing import (
    AutoEngine,
    PageFeatures,
    RouteRules,
    choose_route,
    page_features,
    ppocr_engine_name,
    ppocr_scale,
)
from ocrbatch.model import Block, Line, PageTask, PageText, Word
from tests.badfiles import font, text_pdf

WORDS = (
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven",
    "wizards", "quietly", "judge", "boxing", "matches", "and", "pack", "my", "box", "with",
    "five", "dozen", "liquor", "jugs", "every", "morning",
)  # fmt: skip


def _lines(n: int, seed: int = 0, words: int = 9) -> list[str]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(words)) for _ in range(n)]


def clean_typed_page() -> Image.Image:
    """A book page at 300 dpi: 12-pt type (50 px em), black on white, 28 lines."""
    im = Image.new("L", (2000, 2600), 255)
    d = ImageDraw.Draw(im)
    for i, line in enumerate(_lines(28)):
        d.text((150, 150 + 80 * i), line.capitalize() + ".", fill=0, font=font(50))
    return im


def small_noisy_receipt() -> Image.Image:
    """A thermal receipt: 15-px type, grey print on grey paper, specks of noise."""
    im = Image.new("L", (600, 1100), 205)
    d = ImageDraw.Draw(im)
    items = ["COFFEE", "TEA", "MUFFIN", "BAGEL", "WATER", "JUICE", "SCONE", "SOUP"]
    for i in range(24):
        d.text((20, 30 + 40 * i), f"{items[i % 8]} x{i % 3 + 1}", fill=110, font=font(15))
        d.text((470, 30 + 40 * i), f"{(i * 7) % 40 + 1}.{i % 10}0", fill=110, font=font(15))
    rnd = random.Random(1)
    for _ in range(3000):
        im.putpixel((rnd.randrange(600), rnd.randrange(1100)), rnd.choice((90, 140)))
    return im


def born_digital_page_image() -> Image.Image:
    """A paper's page rendered at 200 dpi (as DocBank's): 9-pt type, a 25-px em."""
    im = Image.new("RGB", (1700, 2200), (255, 255, 255))
    d = ImageDraw.Draw(im)
    for i, line in enumerate(_lines(40, seed=2, words=10)):
        d.text((150, 150 + 45 * i), line, fill=(0, 0, 0), font=font(25))
    return im


def test_clean_typed_page_is_read_by_tesseract_when_it_is_sure() -> None:
    f = page_features(clean_typed_page())
    assert f.letter_height >= RouteRules.default().min_letter_height
    first = choose_route(f, RouteRules.default())
    assert first.engine == "tesseract" and first.reason.startswith("clean print")
    sure = PageFeatures(f.letter_height, f.speckle, f.contrast, tesseract_confidence=0.95)
    assert choose_route(sure, RouteRules.default()).engine == "tesseract"
    # The same page read with low confidence (a font Tesseract does not know) goes on.
    unsure = PageFeatures(f.letter_height, f.speckle, f.contrast, tesseract_confidence=0.7)
    again = choose_route(unsure, RouteRules.default())
    assert again.engine == "ppocr" and again.reason.startswith("Tesseract confidence 0.70")


def test_small_noisy_receipt_goes_straight_to_ppocr() -> None:
    f = page_features(small_noisy_receipt())
    route = choose_route(f, RouteRules.default())
    assert route.engine == "ppocr"
    assert route.reason.startswith("letters ") and f.letter_height < 20


def test_born_digital_page_image_goes_to_ppocr_for_its_small_type() -> None:
    f = page_features(born_digital_page_image())
    assert 0 < f.letter_height < RouteRules.default().min_letter_height
    assert choose_route(f, RouteRules.default()).engine == "ppocr"


def test_rules_in_order_letters_speckle_contrast() -> None:
    rules = RouteRules(20, 0.3, 0.5, 0.9)
    assert choose_route(PageFeatures(0.0, 0.0, 1.0), rules).reason.startswith("no letters")
    assert choose_route(PageFeatures(25, 0.4, 1.0), rules).reason == "speckle 0.40 > 0.3"
    assert choose_route(PageFeatures(25, 0.1, 0.3), rules).reason == "contrast 0.30 < 0.5"
    assert choose_route(PageFeatures(25, 0.1, 0.9), rules).engine == "tesseract"


class _Stub:
    """An engine that says which it is (the routing engine's parts, without models); it
    reads one word, "word", at (10, 10, 50, 30) of the image it is given."""

    def __init__(self, label: str, confidence: float) -> None:
        self.label, self.confidence, self.calls = label, confidence, 0
        self.sizes: list[tuple[int, int]] = []

    def recognize(self, image: Image.Image, task: PageTask) -> PageText:
        self.calls += 1
        w, h = image.size
        self.sizes.append((w, h))
        word = Word("word", (10, 10, 50, 30), self.confidence)
        block = Block((Line((word,), word.box, self.confidence),), word.box)
        dpi = image.info.get("dpi")
        return PageText(self.label, self.confidence, w, h, (block,), dpi=dpi[0] if dpi else None)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("page", "tess_conf", "route", "text", "calls"),
    [
        (clean_typed_page, 0.95, "tesseract", "tesseract", (1, 0)),
        (clean_typed_page, 0.60, "tesseract+ppocr", "ppocr", (1, 1)),
        (small_noisy_receipt, 0.95, "ppocr", "ppocr", (0, 1)),
    ],
)
def test_auto_engine_records_the_route_and_why(
    page: object, tess_conf: float, route: str, text: str, calls: tuple[int, int]
) -> None:
    engine = AutoEngine({})
    tess, pp = _Stub("tesseract", tess_conf), _Stub("ppocr", 0.99)
    engine._tesseract, engine._ppocr = tess, pp  # type: ignore[assignment]
    image = page()  # type: ignore[operator]
    out = engine.recognize(image, PageTask(1, 1, 1, "x.png", 0, 1))
    assert out.text == text
    assert (tess.calls, pp.calls) == calls
    assert out.info["route"] == route and out.info["route_reason"]
    assert out.info["route_features"]["letter_height"] > 0
    if tess.calls:
        assert out.info["route_features"]["tesseract_confidence"] == tess_conf


def test_a_forced_route_is_recorded_as_forced() -> None:
    engine = AutoEngine({"route": "tesseract"})
    tess, pp = _Stub("tesseract", 0.5), _Stub("ppocr", 0.99)
    engine._tesseract, engine._ppocr = tess, pp  # type: ignore[assignment]
    out = engine.recognize(small_noisy_receipt(), PageTask(1, 1, 1, "x.png", 0, 1))
    assert out.text == "tesseract" and pp.calls == 0
    assert out.info == {"route": "tesseract", "route_reason": "route forced by option"}


def test_without_cuda_the_ppocr_route_is_rapidocr() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine: auto means ppocr-torch there")
    assert ppocr_engine_name("auto") == "rapidocr"
    assert ppocr_engine_name("ppocr-torch") == "ppocr-torch"


@pytest.fixture
def auto_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The ``auto`` entry point, also when this checkout is not the installed one."""
    found = dict(base._entry_points())
    found.setdefault(
        "auto",
        EntryPoint("auto", "ocrbatch.engines.routing:AutoEngine", base.GROUP),
    )
    monkeypatch.setattr(base, "_entry_points", lambda: found)
    yield


def test_born_digital_pdf_page_is_taken_from_its_text_layer_no_route(
    tmp_path: Path, auto_registered: None
) -> None:
    from ocrbatch.pipeline import WorkerSpec, close_worker, init_worker, process_page

    pdf = text_pdf(tmp_path / "paper.pdf", ["A born-digital page\nwith a text layer"])
    spec = WorkerSpec(engine="auto", preprocess="off")
    init_worker(spec, ignore_sigint=False)
    try:
        out = process_page(PageTask(1, 1, 1, str(pdf), 0, 1))
    finally:
        close_worker()
    assert out.ok and out.info["path"] == "text-layer"
    assert "route" not in out.info  # no engine read it
    assert out.page is not None and "born-digital" in out.page["text"]


def test_ppocr_reads_a_page_shrunk_to_small_letters_and_words_come_back_in_page_pixels() -> None:
    engine = AutoEngine({"ppocr_letter_height": 10, "ppocr_min_scale": 0.5})
    tess, pp = _Stub("tesseract", 0.5), _Stub("ppocr", 0.99)
    engine._tesseract, engine._ppocr = tess, pp  # type: ignore[assignment]
    engine._ppocr_name = "rapidocr"
    image = clean_typed_page()  # 23-px letters, 2000 x 2600
    image.info["dpi"] = (300, 300)
    f = page_features(image)
    assert ppocr_scale(f, 10, 0.5) == 0.5  # 10 / 23 is under the floor
    out = engine.read_ppocr(image, PageTask(1, 1, 1, "x.png", 0, 1), f)
    assert pp.sizes == [(1000, 1300)]
    assert (out.width, out.height, out.dpi) == (2000, 2600, 300.0)
    assert next(iter(out.words)).box == (20, 20, 100, 60)
    assert out.info["ppocr_scale"] == 0.5
    # Letters already small: read as they are.
    small = PageFeatures(9.0, 0.0, 1.0)
    assert ppocr_scale(small, 10, 0.5) == 1.0
    assert engine.read_ppocr(image, PageTask(1, 1, 1, "x.png", 0, 1), small).width == 2000
    assert pp.sizes[-1] == (2000, 2600)


def test_without_any_ppocr_engine_auto_reads_with_tesseract_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from ocrbatch.errors import ConfigError

    monkeypatch.setitem(sys.modules, "rapidocr", None)  # the rapidocr extra not installed
    monkeypatch.setattr("ocrbatch.engines.routing.ppocr_candidates", lambda c: ["rapidocr"])
    AutoEngine.check({})  # auto: not an error; pages say why they were not read by PP-OCR
    with pytest.raises(ConfigError, match="rapidocr"):
        AutoEngine.check({"ppocr": "rapidocr"})  # named: an error
    engine = AutoEngine({})
    tess = _Stub("tesseract", 0.5)
    engine._tesseract = tess  # type: ignore[assignment]
    out = engine.recognize(small_noisy_receipt(), PageTask(1, 1, 1, "x.png", 0, 1))
    assert out.text == "tesseract" and out.info["route"] == "tesseract"
    assert "PP-OCR cannot run (rapidocr: " in out.info["route_reason"]
    assert out.info["route_reason"].startswith("letters ")
