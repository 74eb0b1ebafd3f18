"""hOCR and ALTO XML: one layout file per document, every page with its blocks, lines and
words, their boxes (polygons where text is rotated) and confidences.

- hOCR 1.2 (XHTML): ``ocr_page`` > ``ocr_carea`` > ``ocr_par`` > ``ocr_line`` >
  ``ocrx_word``; ``bbox``, ``poly`` and ``x_wconf`` (0..100) in ``title``.
- ALTO v4 (schema 4.4, pixel units): ``Page`` > ``PrintSpace`` > ``TextBlock`` >
  ``TextLine`` > ``String``/``SP``; ``WC`` (0..1) per word, ``Shape/Polygon`` for
  rotated words. tests/data/schemas holds the XSD the tests validate against.

Documents are written from the store's records with the standard library's XML writer
(escaping is its job, not ours). What it does not do is refuse characters that XML 1.0
forbids (C0 controls but tab, LF and CR; U+FFFE, U+FFFF; lone surrogates), which reach
us in recognized text, PDF text layers and file names: :func:`xml_safe` replaces each
with U+FFFD, in every text and attribute, so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..model import Box, PageText, Word
from .atomic import atomic_bytes_writer
from .documents import ExportOptions

__all__ = [
    "ALTO_NS",
    "alto_document",
    "completed_pages",
    "hocr_document",
    "write_alto",
    "write_hocr",
    "xml_safe",
]

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XHTML = "http://www.w3.org/1999/xhtml"
_ALTO_XSD = "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"


# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` with each character that XML 1.0 forbids replaced by U+FFFD."""
    return _NOT_XML_CHAR.sub("\ufffd", text)


def _serialize(root: ET.Element, *, xml_declaration: bool) -> bytes:
    """The tree as UTF-8 XML, every text and attribute value made :func:`xml_safe`."""
    for el in root.iter():
        if el.text:
            el.text = xml_safe(el.text)
        if el.tail:
            el.tail = xml_safe(el.tail)
        for k, v in el.attrib.items():
            el.attrib[k] = xml_safe(v)
    ET.indent(root, space=" ")
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=xml_declaration)
    return data


def completed_pages(doc: Mapping[str, Any]) -> Iterator[tuple[int, PageText | None]]:
    """(page index, PageText) of every page of a document; None for a page without a
    result (failed or cancelled)."""
    for p in doc["pages"]:
        result = p.get("result_json")
        ok = p["status"] == "completed" and result
        yield p["page_index"], PageText.from_dict(result) if ok else None


def _software() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ocrbatch")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "unknown"


def _bbox(b: Box) -> str:
    return f"bbox {b[0]} {b[1]} {b[2]} {b[3]}"


def _word_title(w: Word) -> str:
    parts = [_bbox(w.box)]
    if w.polygon:
        parts.append("poly " + " ".join(f"{x} {y}" for x, y in w.polygon))
    parts.append(f"x_wconf {round(100 * w.confidence)}")
    return "; ".join(parts)


def hocr_document(doc: Mapping[str, Any]) -> bytes:
    """The hOCR (XHTML) of one document."""
    ET.register_namespace("", _XHTML)
    html = ET.Element(f"{{{_XHTML}}}html", {"lang": "en"})
    head = ET.SubElement(html, f"{{{_XHTML}}}head")
    ET.SubElement(head, f"{{{_XHTML}}}title").text = str(doc["rel_path"])
    for name, content in (
        ("ocr-system", f"ocrbatch {_software()}"),
        ("ocr-capabilities", "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf ocrp_poly"),
        ("ocr-number-of-pages", str(len(doc["pages"]))),
    ):
        ET.SubElement(head, f"{{{_XHTML}}}meta", {"name": name, "content": content})
    body = ET.SubElement(html, f"{{{_XHTML}}}body")
    path = str(doc["path"]).replace('"', "%22")
    for index, page in completed_pages(doc):
        n = index + 1
        if page is None:
            continue
        title = f'image "{path}"; {_bbox((0, 0, page.width, page.height))}; ppageno {index}'
        if page.dpi:
            title += f"; scan_res {round(page.dpi)} {round(page.dpi)}"
        div = ET.SubElement(
            body, f"{{{_XHTML}}}div", {"class": "ocr_page", "id": f"page_{n}", "title": title}
        )
        for bi, block in enumerate(page.blocks, 1):
            bid = f"{n}_{bi}"
            area = ET.SubElement(
                div,
                f"{{{_XHTML}}}div",
                {"class": "ocr_carea", "id": f"block_{bid}", "title": _bbox(block.box)},
            )
            par = ET.SubElement(
                area,
                f"{{{_XHTML}}}p",
                {"class": "ocr_par", "id": f"par_{bid}", "title": _bbox(block.box)},
            )
            for li, line in enumerate(block.lines, 1):
                lid = f"{bid}_{li}"
                span = ET.SubElement(
                    par,
                    f"{{{_XHTML}}}span",
                    {"class": "ocr_line", "id": f"line_{lid}", "title": _bbox(line.box)},
                )
                for wi, w in enumerate(line.words, 1):
                    ws = ET.SubElement(
                        span,
                        f"{{{_XHTML}}}span",
                        {"class": "ocrx_word", "id": f"word_{lid}_{wi}", "title": _word_title(w)},
                    )
                    ws.text = w.text
                    ws.tail = " "
    head_xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    )
    return head_xml.encode() + _serialize(html, xml_declaration=False) + b"\n"


def _pos(el: ET.Element, b: Box) -> None:
    el.set("HPOS", str(b[0]))
    el.set("VPOS", str(b[1]))
    el.set("WIDTH", str(max(0, b[2] - b[0])))
    el.set("HEIGHT", str(max(0, b[3] - b[1])))


def alto_document(doc: Mapping[str, Any]) -> bytes:
    """The ALTO v4 XML of one document (valid against alto-4-4.xsd)."""
    ET.register_namespace("", ALTO_NS)
    ET.register_namespace("xsi", _XSI)
    a = f"{{{ALTO_NS}}}"
    root = ET.Element(
        f"{a}alto", {f"{{{_XSI}}}schemaLocation": f"{ALTO_NS} {_ALTO_XSD}", "SCHEMAVERSION": "4.4"}
    )
    desc = ET.SubElement(root, f"{a}Description")
    ET.SubElement(desc, f"{a}MeasurementUnit").text = "pixel"
    src = ET.SubElement(desc, f"{a}sourceImageInformation")
    ET.SubElement(src, f"{a}fileName").text = str(doc["path"])
    proc = ET.SubElement(desc, f"{a}Processing", {"ID": "ocrbatch"})
    ET.SubElement(proc, f"{a}processingCategory").text = "contentGeneration"
    soft = ET.SubElement(proc, f"{a}processingSoftware")
    ET.SubElement(soft, f"{a}softwareName").text = "ocrbatch"
    ET.SubElement(soft, f"{a}softwareVersion").text = _software()
    layout = ET.SubElement(root, f"{a}Layout")
    for index, page in completed_pages(doc):
        if page is None:
            continue
        n = index + 1
        pg = ET.SubElement(
            layout,
            f"{a}Page",
            {
                "ID": f"p{n}",
                "PHYSICAL_IMG_NR": str(n),
                "WIDTH": str(page.width),
                "HEIGHT": str(page.height),
                "PC": f"{page.confidence:.4f}",
            },
        )
        space = ET.SubElement(pg, f"{a}PrintSpace")
        _pos(space, (0, 0, page.width, page.height))
        for bi, block in enumerate(page.blocks, 1):
            tb = ET.SubElement(space, f"{a}TextBlock", {"ID": f"p{n}_b{bi}"})
            _pos(tb, block.box)
            for li, line in enumerate(block.lines, 1):
                tl = ET.SubElement(tb, f"{a}TextLine", {"ID": f"p{n}_b{bi}_l{li}"})
                _pos(tl, line.box)
                for wi, w in enumerate(line.words, 1):
                    if wi > 1:
                        ET.SubElement(tl, f"{a}SP")
                    s = ET.SubElement(
                        tl, f"{a}String", {"ID": f"p{n}_b{bi}_l{li}_w{wi}", "CONTENT": w.text}
                    )
                    _pos(s, w.box)
                    s.set("WC", f"{w.confidence:.4f}")
                    if w.polygon:
                        shape = ET.SubElement(s, f"{a}Shape")
                        pts = " ".join(f"{x},{y}" for x, y in w.polygon)
                        ET.SubElement(shape, f"{a}Polygon", {"POINTS": pts})
    return _serialize(root, xml_declaration=True) + b"\n"


def write_hocr(doc: Mapping[str, Any], dest: Path, options: ExportOptions) -> None:
    """hocr/<input tree>/<file name>.hocr of a completed document."""
    with atomic_bytes_writer(dest) as f:
        f.write(hocr_document(doc))


def write_alto(doc: Mapping[str, Any], dest: Path, options: ExportOptions) -> None:
    """alto/<input tree>/<file name>.xml of a completed document."""
    with atomic_bytes_writer(dest) as f:
        f.write(alto_document(doc))
