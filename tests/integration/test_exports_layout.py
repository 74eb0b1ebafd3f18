"""hOCR, ALTO and searchable PDF: each round-trips (parses, validates, text comes back)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pikepdf
import pypdfium2 as pdfium
import pytest
from lxml import etree
from PIL import Image

import ocrbatch
from ocrbatch.exporters.layout_xml import ALTO_NS, alto_document, hocr_document
from ocrbatch.exporters.pdf import searchable_pdf
from ocrbatch.model import Block, Line, PageText, Word
from tests.conftest import DATA

Cli = Callable[..., CompletedProcess[str]]
SCHEMAS = DATA / "schemas"
PHOTOTEST = DATA / "tesseract_test" / "phototest.tif"
JPEG = DATA / "docbank" / "arxiv_1401_6921_p13.jpg"


def _page() -> PageText:
    """640x480 page: two lines, Unicode text, one rotated word with its polygon."""
    w1 = Word("naïve", (40, 40, 140, 70), 0.91)
    w2 = Word("café\u2013東京", (160, 40, 330, 70), 0.5)
    tilted = Word(
        "tilted", (40, 200, 200, 260), 0.75, ((40, 240), (190, 200), (200, 220), (50, 260))
    )
    l1 = Line((w1, w2), (40, 40, 330, 70), 0.7)
    l2 = Line((tilted,), (40, 200, 200, 260), 0.75)
    blocks = (Block((l1,), l1.box), Block((l2,), l2.box))
    return PageText("naïve café\u2013東京\n\ntilted\n", 0.72, 640, 480, blocks, dpi=200.0)


def _doc(path: Path, pages: list[PageText | None], rel: str = "in/doc.tif") -> dict[str, Any]:
    rows = [
        {
            "page_index": i,
            "status": "completed" if p else "failed",
            "result_json": p.to_dict() if p else None,
        }
        for i, p in enumerate(pages)
    ]
    return {"path": str(path), "rel_path": rel, "status": "completed", "pages": rows}


def _words(page: PageText) -> list[Word]:
    return list(page.words)


def test_hocr_round_trips_and_passes_the_hocr_spec_validator() -> None:
    from hocr_spec import HocrValidator

    page = _page()
    data = hocr_document(_doc(PHOTOTEST, [page, None, page]))
    report = HocrValidator("standard").validate(io.BytesIO(data), parse_strict=True)
    assert report.is_valid(), report.format("text")
    root = etree.fromstring(data)
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    pages = root.findall(".//h:div[@class='ocr_page']", ns)
    assert [p.get("id") for p in pages] == ["page_1", "page_3"]  # the failed page 2 is absent
    assert "ppageno 2" in pages[1].get("title")
    spans = pages[0].findall(".//h:span[@class='ocrx_word']", ns)
    back = []
    for s in spans:
        props = dict(p.strip().split(" ", 1) for p in s.get("title").split(";"))
        back.append((s.text, tuple(int(v) for v in props["bbox"].split()), int(props["x_wconf"]),
                     props.get("poly")))  # fmt: skip
    assert back == [
        ("naïve", (40, 40, 140, 70), 91, None),
        ("café\u2013東京", (160, 40, 330, 70), 50, None),
        ("tilted", (40, 200, 200, 260), 75, "40 240 190 200 200 220 50 260"),
    ]


def _validate_alto(data: bytes) -> None:
    doc = etree.fromstring(data)
    schemas = [SCHEMAS / "alto-4-ocrbatch-subset.xsd"]
    official = SCHEMAS / "alto-4-4.xsd"
    if official.is_file():
        schemas.append(official)
    for xsd in schemas:
        schema = etree.XMLSchema(etree.parse(str(xsd)))
        assert schema.validate(doc), (xsd.name, schema.error_log)


def test_alto_round_trips_and_validates() -> None:
    page = _page()
    data = alto_document(_doc(PHOTOTEST, [page, page]))
    _validate_alto(data)
    root = etree.fromstring(data)
    a = {"a": ALTO_NS}
    pages = root.findall(".//a:Page", a)
    assert [(p.get("PHYSICAL_IMG_NR"), p.get("WIDTH"), p.get("HEIGHT")) for p in pages] == [
        ("1", "640", "480"),
        ("2", "640", "480"),
    ]
    strings = pages[0].findall(".//a:String", a)
    back = [
        (
            s.get("CONTENT"),
            tuple(int(s.get(k)) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT")),
            float(s.get("WC")),
        )
        for s in strings
    ]
    assert back == [
        ("naïve", (40, 40, 100, 30), 0.91),
        ("café\u2013東京", (160, 40, 170, 30), 0.5),
        ("tilted", (40, 200, 160, 60), 0.75),
    ]
    poly = strings[2].find("a:Shape/a:Polygon", a)
    assert poly is not None and poly.get("POINTS") == "40,240 190,200 200,220 50,260"
    assert len(pages[0].findall(".//a:TextBlock", a)) == 2
    assert len(pages[0].findall(".//a:SP", a)) == 1


def _image(page: pikepdf.Page) -> pikepdf.Stream:
    """The page's image XObject."""
    xobjects = page.obj.Resources.XObject
    return next(xobjects[k] for k in xobjects if xobjects[k].Subtype == "/Image")


def _pdf_words(path: Path, index: int = 0) -> list[str]:
    pdf = pdfium.PdfDocument(str(path))
    try:
        return pdf[index].get_textpage().get_text_range().split()
    finally:
        pdf.close()


def test_searchable_pdf_of_an_image_puts_unicode_words_on_their_boxes(tmp_path: Path) -> None:
    page = _page()
    out = tmp_path / "doc.pdf"
    searchable_pdf(_doc(PHOTOTEST, [page]), out)
    assert _pdf_words(out) == ["naïve", "café\u2013東京", "tilted"]
    pdf = pdfium.PdfDocument(str(out))
    try:
        p = pdf[0]
        w_pt, h_pt = p.get_size()
        assert (w_pt, h_pt) == pytest.approx((640 * 72 / 200, 480 * 72 / 200))
        tp = p.get_textpage()
        # The first character sits inside the first word's box (page points, y up).
        x0, y0, x1, y1 = tp.get_charbox(0)
        s = 72 / 200
        assert 40 * s - 1 <= x0 < x1 <= 140 * s + 1
        assert h_pt - 70 * s - 2 <= y0 and y1 <= h_pt - 40 * s + 2
        # The image is the page: it fills it.
        objs = list(p.get_objects())
        assert any(o.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE for o in objs)
    finally:
        pdf.close()


def _reference_ocr(image: Image.Image) -> PageText:
    from ocrbatch.engines.tesseract import TesseractEngine
    from ocrbatch.model import PageTask

    engine = TesseractEngine({})
    engine.open()
    try:
        return engine.recognize(image, PageTask(1, 1, 1, "x", 0, 1))
    finally:
        engine.close()


@pytest.mark.parametrize("rotate", [0, 90])
def test_searchable_pdf_of_a_pdf_keeps_its_pages_and_adds_the_words(
    tmp_path: Path, rotate: int
) -> None:
    # A scanned PDF: one image page, /Rotate'd so that it shows upright where asked.
    src = tmp_path / "scan.pdf"
    im = Image.open(PHOTOTEST).convert("L")
    (im.rotate(rotate, expand=True) if rotate else im).save(src, resolution=200)
    with pikepdf.open(src, allow_overwriting_input=True) as pdf:
        if rotate:
            pdf.pages[0].obj.Rotate = rotate
        pdf.save(src)
    original = pikepdf.open(src)
    image_bytes = _image(original.pages[0]).read_raw_bytes()
    # What the PDF-input pipeline does: render the page as shown, OCR the render.
    rendered = pdfium.PdfDocument(str(src))[0].render(scale=300 / 72, grayscale=True).to_pil()
    page = _reference_ocr(rendered)
    out = tmp_path / "out.pdf"
    searchable_pdf(_doc(src, [page], rel="scan.pdf"), out)
    words = [w.text for w in page.words]
    assert words[:4] == ["This", "is", "a", "lot"]
    assert _pdf_words(out) == words
    result = pikepdf.open(out)
    kept = result.pages[0]
    # The original image stream is kept byte for byte, not re-encoded.
    assert _image(kept).read_raw_bytes() == image_bytes
    assert kept.obj.get("/Rotate", 0) == rotate
    # Rendered again, the page looks the same: the text layer is invisible.
    again = pdfium.PdfDocument(str(out))[0].render(scale=300 / 72, grayscale=True).to_pil()
    assert again.tobytes() == rendered.tobytes()
    # On the shown page, the first word's characters lie on the word's box.
    tp = pdfium.PdfDocument(str(out))[0].get_textpage()
    w0 = next(iter(page.words))
    s = 72 / 300
    x0, _, x1, _ = tp.get_charbox(0)
    if rotate == 0:
        assert w0.box[0] * s - 2 <= x0 and x1 <= w0.box[2] * s + 2


def test_run_writes_all_layout_formats_from_real_ocr(tmp_path: Path, db_url: str) -> None:
    out = tmp_path / "out"
    summary = ocrbatch.run(
        [str(PHOTOTEST), str(JPEG)],
        out,
        db=db_url,
        config={"formats": "hocr,alto,pdf", "mode": "sequential"},
    )
    assert summary["documents"]["completed"] == 2
    lines = (out / "results.jsonl").read_text().splitlines()
    recs = {Path(r["path"]).name: r for r in map(json.loads, lines)}
    # Two inputs: each output is named by its input as given, an absolute one without
    # its leading /.
    for src in (PHOTOTEST, JPEG):
        name, rel = src.name, str(src).lstrip("/")
        hocr = (out / "hocr" / f"{rel}.hocr").read_bytes()
        alto = (out / "alto" / f"{rel}.xml").read_bytes()
        pdf = out / "pdf" / f"{rel}.pdf"
        _validate_alto(alto)
        text_words = str(recs[name]["text"]).split()
        hocr_words = [w.text for w in etree.fromstring(hocr).iter("{*}span")
                      if w.get("class") == "ocrx_word"]  # fmt: skip
        alto_words = [s.get("CONTENT") for s in etree.fromstring(alto).iter(f"{{{ALTO_NS}}}String")]
        assert hocr_words == alto_words == text_words
        # pdfium joins a word hyphenated at a line end with the next one (marking the
        # hyphen U+FFFE): compare the characters in order, spaces aside.
        pdf_chars = "".join(_pdf_words(pdf)).replace("\ufffe", "-")
        assert pdf_chars == "".join(text_words)
    # The JPEG is embedded as it was: its own bytes are the page image.
    with pikepdf.open(out / "pdf" / f"{str(JPEG).lstrip('/')}.pdf") as pdf:
        image = _image(pdf.pages[0])
        assert image.read_raw_bytes() == JPEG.read_bytes()
        assert re.fullmatch(r"/DCTDecode", str(image.Filter))


def test_a_pdf_that_cannot_be_written_is_one_line_and_the_others_go_on(tmp_path: Path) -> None:
    from ocrbatch.errors import DocumentError
    from ocrbatch.exporters import export_all

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    docs = [_doc(broken, [_page()], rel="broken.pdf"), _doc(PHOTOTEST, [_page()], rel="ok.tif")]
    with pytest.raises(DocumentError, match=r"^cannot write searchable PDF: ") as err:
        searchable_pdf(docs[0], tmp_path / "x.pdf")
    assert "\n" not in err.value.message
    result = export_all(["pdf"], lambda: docs, tmp_path / "out")
    assert result.written == [tmp_path / "out" / "pdf"]
    (problem,) = result.problems
    assert (problem.path, problem.format, problem.error) == (str(broken), "pdf", err.value.message)
    assert sorted(p.name for p in (tmp_path / "out" / "pdf").iterdir()) == ["ok.tif.pdf"]


def test_a_pdf_page_with_its_own_text_gets_no_second_layer(tmp_path: Path, db_url: str) -> None:
    # A searchable PDF (ours) as input: its pages are read from their text layer.
    src = tmp_path / "in" / "searchable.pdf"
    src.parent.mkdir()
    searchable_pdf(_doc(PHOTOTEST, [_reference_ocr(Image.open(PHOTOTEST))]), src)
    words = _pdf_words(src)
    out = tmp_path / "out"
    summary = ocrbatch.run([str(src)], out, db=db_url, config={"formats": "pdf,alto"})
    assert summary["documents"]["completed"] == 1
    rec = json.loads((out / "results.jsonl").read_text())
    assert rec["page_results"][0]["info"]["path"] == "text-layer"
    assert _pdf_words(out / "pdf" / "searchable.pdf.pdf") == words  # not doubled
    _validate_alto((out / "alto" / "searchable.pdf.xml").read_bytes())
