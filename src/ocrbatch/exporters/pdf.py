"""Searchable PDF: the page images with an invisible text layer placed on the words.

Written with pikepdf (qpdf): it opens an input PDF and appends a content stream to each
of its pages, so the original pages (their images, fonts and vector content) are kept
byte for byte, not re-rendered or re-encoded; and it writes a JPEG input's own bytes as
the page image (DCTDecode), with no lossy re-encoding. Other images (PNG, TIFF, ...)
are stored losslessly (Flate) from the decoded page.

The text is drawn in render mode 3 (invisible) with a Type0 font on Identity-H whose
ToUnicode CMap is the identity on UTF-16 code units: any Unicode text extracts back
as it was recognized. Each word is scaled (font size to its box height, horizontal
scaling to its box width) and rotated with its polygon, so selecting text in a viewer
highlights the words on the image. The font has no glyph program (the text is never
painted); viewers substitute one for selection boxes only.
"""

from __future__ import annotations

import math
import secrets
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast

import pikepdf
from pikepdf import Array, Dictionary, Name
from PIL import Image

from ..errors import DocumentError, reason
from ..locations import default_object_cache_dir, object_cache_bytes
from ..model import PageText
from ..tools.files import check_regular, open_file
from ..tools.images import image_dpi, load_image
from ..tools.objectcache import local_copy
from ..tools.storage import is_url
from .atomic import atomic_bytes_writer
from .documents import FATAL_ERRNOS, ExportOptions
from .layout_xml import completed_pages

__all__ = ["searchable_pdf", "text_layer", "write_pdf"]

_FONT = "OcrbatchGlyphless"
_ADVANCE = 0.5  # glyph advance in em (the font's /DW 500)
_TO_UNICODE = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMapResource defineresource pop
end
end
"""
DEFAULT_DPI = 300.0  # page size of an image that states no plausible resolution


def _font(pdf: Any) -> Any:
    descriptor = Dictionary(
        Type=Name.FontDescriptor,
        FontName=Name(f"/{_FONT}"),
        Flags=5,
        FontBBox=Array([0, 0, 500, 1000]),
        ItalicAngle=0,
        Ascent=1000,
        Descent=0,
        CapHeight=1000,
        StemV=80,
    )
    cid = Dictionary(
        Type=Name.Font,
        Subtype=Name.CIDFontType2,
        BaseFont=Name(f"/{_FONT}"),
        CIDSystemInfo=Dictionary(
            Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"), Supplement=0
        ),
        FontDescriptor=pdf.make_indirect(descriptor),
        DW=int(_ADVANCE * 1000),
        CIDToGIDMap=Name.Identity,
    )
    font = Dictionary(
        Type=Name.Font,
        Subtype=Name.Type0,
        BaseFont=Name(f"/{_FONT}"),
        Encoding=Name("/Identity-H"),
        DescendantFonts=Array([pdf.make_indirect(cid)]),
        ToUnicode=pdf.make_stream(_TO_UNICODE),
    )
    return pdf.make_indirect(font)


def _hex(text: str) -> str:
    # Identity-H: one 2-byte code per UTF-16 unit; astral characters become U+FFFD.
    safe = "".join(
        c if ord(c) <= 0xFFFF and not 0xD800 <= ord(c) <= 0xDFFF else "\ufffd" for c in text
    )
    return safe.encode("utf-16-be").hex().upper()


def _f(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") or "0"


def text_layer(page: PageText, width_pt: float, height_pt: float, font: str) -> bytes:
    """Content-stream operators that put ``page``'s words, invisible, on a page of
    ``width_pt`` x ``height_pt`` points shown upright (origin bottom left)."""
    sx, sy = width_pt / page.width, height_pt / page.height
    out = ["BT", "3 Tr"]
    for block in page.blocks:
        for line in block.lines:
            n = len(line.words)
            for i, w in enumerate(line.words):
                text = w.text + (" " if i < n - 1 else "")
                if not w.text:
                    continue
                if w.polygon and len(w.polygon) >= 4:
                    (x0, y0), (x1, y1) = w.polygon[0], w.polygon[1]
                    x3, y3 = w.polygon[-1]
                    ox, oy = x3 * sx, height_pt - y3 * sy
                    dx, dy = (x1 - x0) * sx, -(y1 - y0) * sy
                    length = math.hypot(dx, dy)
                    size = math.hypot((x3 - x0) * sx, (y3 - y0) * sy)
                    angle = math.atan2(dy, dx)
                else:
                    left, top, right, bottom = w.box
                    ox, oy = left * sx, height_pt - bottom * sy
                    length, size, angle = (right - left) * sx, (bottom - top) * sy, 0.0
                size = max(size, 1.0)
                tz = 100.0 * max(length, 0.5) / (len(w.text) * _ADVANCE * size)
                c, s = math.cos(angle), math.sin(angle)
                out.append(
                    f"/{font} {_f(size)} Tf {_f(tz)} Tz "
                    f"{_f(c)} {_f(s)} {_f(-s)} {_f(c)} {_f(ox)} {_f(oy)} Tm <{_hex(text)}> Tj"
                )
    out.append("ET")
    return ("\n".join(out) + "\n").encode("ascii")


def _rotation(page: Any) -> int:
    node = page.obj
    while node is not None:
        if "/Rotate" in node:
            return int(node.Rotate) % 360
        node = node.get("/Parent")
    return 0


def _overlay(pdf: Any, page: Any, text: PageText, font: Any) -> None:
    """Add ``text`` as an invisible layer on an existing PDF page, keeping its content."""
    x0, y0, x1, y1 = (float(v) for v in page.cropbox)
    w, h = x1 - x0, y1 - y0
    rot = _rotation(page)
    shown_w, shown_h = (h, w) if rot in (90, 270) else (w, h)
    # Map the upright (as shown) page onto the page's own unrotated user space.
    cm = {
        0: (1, 0, 0, 1, x0, y0),
        90: (0, 1, -1, 0, x0 + w, y0),
        180: (-1, 0, 0, -1, x0 + w, y0 + h),
        270: (0, -1, 1, 0, x0, y0 + h),
    }[rot]
    name = page.add_resource(font, Name.Font, prefix="OcrbF")
    layer = text_layer(text, shown_w, shown_h, str(name).lstrip("/"))
    page.contents_add(pdf.make_stream(b"q\n"), prepend=True)
    matrix = " ".join(_f(v) for v in cm)
    page.contents_add(pdf.make_stream(b"\nQ\nq " + matrix.encode() + b" cm\n" + layer + b"Q\n"))


def _image_xobject(
    pdf: Any, path: str, index: int, text: PageText, max_pixels: int, page_dpi: float | None
) -> tuple[Any, float]:
    """The page image as an XObject (a JPEG's own bytes where possible) and its dpi."""
    if index == 0:
        with open_file(path) as f, Image.open(f) as im:
            upright = im.getexif().get(0x0112, 1) in (0, 1)
            if (
                im.format == "JPEG"
                and im.mode in ("L", "RGB")
                and upright
                and im.size == (text.width, text.height)
            ):
                dpi = image_dpi(im) or page_dpi or text.dpi or DEFAULT_DPI
                f.seek(0)
                xobj = pdf.make_stream(
                    f.read(),
                    Type=Name.XObject,
                    Subtype=Name.Image,
                    Width=im.width,
                    Height=im.height,
                    ColorSpace=Name.DeviceGray if im.mode == "L" else Name.DeviceRGB,
                    BitsPerComponent=8,
                    Filter=Name.DCTDecode,
                )
                return xobj, dpi
    page_image = load_image(path, index, max_pixels=max_pixels)
    dpi = image_dpi(page_image) or page_dpi or text.dpi or DEFAULT_DPI
    mode = page_image.mode
    bits = 1 if mode == "1" else 8
    space = Name.DeviceRGB if mode == "RGB" else Name.DeviceGray
    xobj = pdf.make_stream(
        zlib.compress(page_image.tobytes(), 6),
        Type=Name.XObject,
        Subtype=Name.Image,
        Width=page_image.width,
        Height=page_image.height,
        ColorSpace=space,
        BitsPerComponent=bits,
        Filter=Name.FlateDecode,
    )
    return xobj, dpi


def _open(path: str, password: str | None) -> tuple[Any, str]:
    """The input PDF, and the user password that opened it ("" if it needs none)."""
    try:
        return pikepdf.open(path), ""
    except pikepdf.PasswordError:
        # Only now: pikepdf warns when a password is given that a PDF does not need.
        if not password:
            raise DocumentError("encrypted PDF: it needs a password (pass --password)") from None
        try:
            return pikepdf.open(path, password=password), password
        except pikepdf.PasswordError:
            raise DocumentError("encrypted PDF: the --password given does not open it") from None


def _encryption(pdf: Any, user_password: str) -> Any:
    """An encrypted input stays encrypted: the same user password (the one that opened
    it), AES-256, its permissions; its owner password is unknown to us, so a random one
    keeps those permissions binding. False: the input was not encrypted."""
    if not pdf.is_encrypted:
        return False
    return pikepdf.Encryption(
        user=user_password, owner=secrets.token_urlsafe(24), R=6, allow=pdf.allow
    )


def searchable_pdf(
    doc: Mapping[str, Any],
    dest: Path,
    *,
    password: str | None = None,
    max_pixels: int = 250_000_000,
) -> None:
    """Write the searchable PDF of one document to ``dest`` (raises DocumentError; an
    OSError only where the output folder as a whole cannot take the file: disk full,
    read-only). ``password`` opens an encrypted input PDF."""
    path = str(doc["path"])
    pages = list(completed_pages(doc))
    is_pdf = path.lower().endswith(".pdf")
    # The resolution an image that states none was given (--image-dpi or estimated from
    # its letters, see pipeline._page_dpi): its page size.
    page_dpis = {
        p["page_index"]: float((p.get("info") or {})["page_dpi"])
        for p in doc["pages"]
        if (p.get("info") or {}).get("page_dpi")
    }
    # A PDF page read from its own text layer (no OCR) already has its text: another
    # layer on it would double every word.
    native = {
        p["page_index"] for p in doc["pages"] if (p.get("info") or {}).get("path") == "text-layer"
    }
    check_regular(path)  # qpdf opens the path itself: never a FIFO or a device
    try:
        pdf, user_password = _open(path, password) if is_pdf else (pikepdf.new(), "")
        with pdf:
            font = _font(pdf)
            for index, text in pages:
                if text is None:
                    continue
                if is_pdf:
                    if text.blocks and index < len(pdf.pages) and index not in native:
                        _overlay(pdf, pdf.pages[index], text, font)
                    continue
                page_dpi = page_dpis.get(index)
                xobj, dpi = _image_xobject(pdf, path, index, text, max_pixels, page_dpi)
                w_pt, h_pt = text.width * 72.0 / dpi, text.height * 72.0 / dpi
                page = pdf.add_blank_page(page_size=(w_pt, h_pt))
                img = page.add_resource(xobj, Name.XObject, prefix="Im")
                draw = f"q {_f(w_pt)} 0 0 {_f(h_pt)} 0 0 cm {img} Do Q\n".encode()
                page.contents_add(pdf.make_stream(draw))
                _overlay(pdf, page, text, font)
            with atomic_bytes_writer(dest) as f:
                pdf.save(cast(BinaryIO, f), encryption=_encryption(pdf, user_password))
    except DocumentError as exc:
        raise DocumentError(f"cannot write searchable PDF: {exc.message}") from None
    except OSError as exc:
        if exc.errno in FATAL_ERRNOS:
            raise
        why = reason(exc, 200, with_type=False)
        raise DocumentError(f"cannot write searchable PDF: {why}") from None
    except Exception as exc:
        # The input is outside our control and qpdf/Pillow raise many kinds: whatever
        # they raise, it is this document's problem, not the whole export's.
        why = reason(exc, 200, with_type=False)
        raise DocumentError(f"cannot write searchable PDF: {why}") from None


def write_pdf(doc: Mapping[str, Any], dest: Path, options: ExportOptions) -> None:
    """pdf/<input tree>/<file name>.pdf of a completed document (an input in a bucket is
    read from this machine's copy of it, fetched into the object cache)."""
    path = str(doc["path"])
    if is_url(path):
        local = local_copy(
            path,
            doc.get("content_hash"),
            options.storage_options,
            str(default_object_cache_dir()),
            object_cache_bytes(),
            stamp=doc.get("source_stamp"),
        )
        doc = {**doc, "path": local}
    searchable_pdf(doc, dest, password=options.password, max_pixels=options.max_pixels)
