"""PDF pages through pypdfium2 (PDFium: no poppler, no ghostscript).

Three things, each translating PDFium's failures into one-line
:class:`~ocrbatch.errors.DocumentError` reasons at this boundary:

- :func:`page_sizes`: page count and page sizes for discovery, without rendering;
- :func:`text_layer`: the text a page already carries (born-digital PDFs, earlier OCR),
  as a :class:`~ocrbatch.model.PageText` with word boxes in pixels at the render dpi;
- :func:`render_page`: one page as a grey PIL image at a dpi, inside the worker.

PDFium is not thread-safe, and discovery counts pages from a few threads: every call
into it holds one process-wide lock.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from typing import IO, Any

from PIL import Image

from ..errors import DocumentError
from ..model import Block, Line, PageText, Word
from .files import check_regular

__all__ = ["PDF_EXTENSIONS", "RenderPlan", "page_sizes", "plan_render", "render_page", "text_layer"]

PDF_EXTENSIONS = frozenset({".pdf"})

_LOCK = threading.RLock()
# FPDF_GetLastError codes of a failed FPDF_LoadDocument.
_LOAD_ERRORS = {
    1: "unknown PDFium error",
    3: "not a PDF, or damaged (truncated, bad cross-reference table or trailer, no pages)",
    5: "corrupt page tree",
    6: "unsupported security handler",
}
_ERR_PASSWORD = 4
# "File error" left by our reset in _document: PDFium gave no reason of its own, which
# it does for a missing or empty page tree (the file itself was just read fine).
_ERR_NO_REASON = 2
# A line break, or a word (a word that ends in PDFium's line-end hyphen ends its line).
_TOKEN = re.compile(r"\r\n|[\r\n]|[^\s\ufffe]+\ufffe?|\ufffe")
# A page whose text layer maps fewer than this share of its characters to real letters
# (fonts without a ToUnicode map give U+FFFD or private-use code points) is OCRed instead.
_MIN_READABLE = 0.7


@contextlib.contextmanager
def _document(path: str | IO[bytes], password: str | None) -> Iterator[Any]:
    import pypdfium2 as pdfium

    # PDFium opens the path itself (a blocking fopen): a FIFO would hang it, a device
    # would be read forever. Only a regular file gets that far. (A file object, an
    # object in a bucket read by ranges, is read through it instead.)
    if isinstance(path, str):
        check_regular(path)
    with _LOCK:
        try:
            doc = pdfium.PdfDocument(path, password=password or None)
        except pdfium.PdfiumError:
            # PDFium keeps the last load error in a global that some failures (a PDF
            # without pages) do not set: the code may belong to an earlier file. Set it
            # to "file error" with a load that must fail, then try once more: if the
            # code is still that, this file failed without giving a reason.
            from pypdfium2 import raw

            raw.FPDF_LoadDocument(b"/nonexistent/ocrbatch-reset.pdf\x00", None)
            try:
                doc = pdfium.PdfDocument(path, password=password or None)
            except pdfium.PdfiumError as exc:
                raise DocumentError(_load_reason(exc, password)) from None
        except FileNotFoundError:
            raise DocumentError("file not found (moved or deleted after discovery?)") from None
        except PermissionError:
            raise DocumentError("permission denied: cannot read the file") from None
        except OSError as exc:
            raise DocumentError(f"cannot open file: {exc.strerror or exc}") from None
        try:
            yield doc
        finally:
            doc.close()


def _load_reason(exc: Any, password: str | None) -> str:
    code = getattr(exc, "err_code", None)
    if code == _ERR_PASSWORD:
        if password:
            return "encrypted PDF: the --password given does not open it"
        return "encrypted PDF: it needs a password (pass --password)"
    if code == _ERR_NO_REASON:
        return "PDF has no pages (empty or missing page tree)"
    reason = _LOAD_ERRORS.get(code if code is not None else 1, "cannot load PDF")
    return f"corrupt or truncated PDF: {reason}"


def page_sizes(path: str | IO[bytes], password: str | None = None) -> list[tuple[float, float]]:
    """(width, height) in points of every page, as displayed (``/Rotate`` applied),
    without rendering or parsing page content; raises DocumentError. ``path`` may be a
    file object (seekable): only the cross-reference table and page tree are read."""
    from pypdfium2 import raw

    with _document(path, password) as doc:
        n = len(doc)
        if n <= 0:
            raise DocumentError("PDF has no pages")
        sizes = []
        for i in range(n):
            size = raw.FS_SIZEF()
            if not raw.FPDF_GetPageSizeByIndexF(doc, i, size):
                raise DocumentError(f"corrupt PDF: page {i + 1} cannot be read")
            sizes.append((float(size.width), float(size.height)))
        return sizes


class RenderPlan:
    """The dpi a page is rendered at: the requested one, lowered just enough that the
    bitmap stays within the pixel limit (a 30,000 pt poster page would need 15 billion
    pixels at 300 dpi)."""

    __slots__ = ("dpi", "height", "reduced", "width")

    def __init__(self, width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> None:
        scale = dpi / 72.0
        w, h = width_pt * scale, height_pt * scale
        self.reduced = w * h > max_pixels
        if self.reduced:
            dpi = dpi * (max_pixels / (w * h)) ** 0.5
            scale = dpi / 72.0
        self.dpi = dpi
        self.width = max(1, round(width_pt * scale))
        self.height = max(1, round(height_pt * scale))


def plan_render(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> RenderPlan:
    """What :func:`render_page` will do with a page of this size (discovery's weight)."""
    return RenderPlan(width_pt, height_pt, dpi, max_pixels)


# Below this a page is not worth OCRing: the text would be a few pixels high.
_MIN_DPI = 20.0


def render_page(
    path: str, index: int, *, dpi: float, max_pixels: int, password: str | None = None
) -> tuple[Image.Image, RenderPlan]:
    """Page ``index`` (0-based) as a grey image at ``dpi`` (lowered to fit ``max_pixels``),
    with the dpi in ``image.info``; raises DocumentError."""
    import pypdfium2 as pdfium

    with _document(path, password) as doc:
        page = _page(doc, index)
        try:
            w, h = page.get_size()
            plan = RenderPlan(w, h, dpi, max_pixels)
            if plan.dpi < _MIN_DPI:
                raise DocumentError(
                    f"page {index + 1} too large: {w:.0f}x{h:.0f} pt would render at only "
                    f"{plan.dpi:.0f} dpi within --max-pixels {max_pixels:,}"
                )
            try:
                bitmap = page.render(
                    scale=plan.dpi / 72.0, grayscale=True, draw_annots=True, may_draw_forms=False
                )
            except pdfium.PdfiumError as exc:
                raise DocumentError(f"page {index + 1} cannot be rendered: {exc}") from None
            except MemoryError:
                raise DocumentError(f"page {index + 1}: out of memory while rendering") from None
            # to_pil() shares the bitmap's buffer; copy once so the bitmap can be freed
            # and the image owns its memory.
            image = bitmap.to_pil().convert("L")
            bitmap.close()
        finally:
            page.close()
    image.info["dpi"] = (plan.dpi, plan.dpi)
    return image, plan


def _page(doc: Any, index: int) -> Any:
    import pypdfium2 as pdfium

    if not 0 <= index < len(doc):
        raise DocumentError(f"page {index + 1} does not exist (the PDF has {len(doc)} pages)")
    try:
        return doc[index]
    except pdfium.PdfiumError:
        raise DocumentError(f"corrupt PDF: page {index + 1} cannot be loaded") from None


def text_layer(
    path: str, index: int, *, dpi: float, max_pixels: int, password: str | None = None
) -> PageText | None:
    """The page's own text as a PageText (boxes in pixels at the dpi the page would be
    rendered at), or None when it has no usable text layer (a scan) and needs OCR."""
    from pypdfium2 import raw

    with _document(path, password) as doc:
        page = _page(doc, index)
        try:
            textpage = page.get_textpage()
            try:
                n = textpage.count_chars()
                text = textpage.get_text_range() if n > 0 else ""
                if not _readable(text):
                    return None
                w_pt, h_pt = page.get_size()
                plan = RenderPlan(w_pt, h_pt, dpi, max_pixels)
                rotation = page.get_rotation()
                # Unrotated page space: boxes come in it and are turned with the page.
                left, bottom, right, top = page.get_bbox()
                geom = _Geometry(left, bottom, right, top, rotation, plan.dpi / 72.0)
                rect = raw.FS_RECTF()
                words = []
                for line, a, b in _word_spans(text[:n]):
                    first = _loose_box(raw, textpage, a, rect)
                    last = _loose_box(raw, textpage, b - 1, rect) if b - 1 > a else first
                    box = (
                        geom.box(_union_f(first, last))
                        if first is not None and last is not None
                        else (0, 0, 0, 0)
                    )
                    words.append((line, _clean(text[a:b]), box))
            finally:
                textpage.close()
        finally:
            page.close()
    return _page_text(words, plan)


def _readable(text: str) -> bool:
    letters = [c for c in text if not c.isspace() and c not in "\ufffe\x02"]
    if not letters:
        return False
    good = sum(1 for c in letters if c != "\ufffd" and not 0xE000 <= ord(c) <= 0xF8FF)
    return good / len(letters) >= _MIN_READABLE


def _word_spans(text: str) -> list[tuple[int, int, int]]:
    """(line number, start, end) of every word; lines end at PDFium's line breaks."""
    spans = []
    line = 0
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        if token[0] in "\r\n":
            line += 1
            continue
        spans.append((line, m.start(), m.end()))
        if token[-1] == "\ufffe":
            line += 1
    return spans


def _loose_box(raw: Any, textpage: Any, i: int, rect: Any) -> tuple[float, ...] | None:
    # The loose box spans the font's ascent to descent: the same height for every
    # letter of a line, so a word's box is the union of its first and last letters'.
    if raw.FPDFText_GetLooseCharBox(textpage, i, rect):
        return (rect.left, rect.bottom, rect.right, rect.top)
    return None


class _Geometry:
    """PDF user space (points, y up, unrotated) -> displayed page pixels (y down)."""

    def __init__(
        self, left: float, bottom: float, right: float, top: float, rotation: int, scale: float
    ) -> None:
        self.left, self.bottom, self.right, self.top = left, bottom, right, top
        self.rotation = rotation % 360
        self.scale = scale

    def box(self, b: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = b
        # Distances from the unrotated page's top-left corner, y down.
        a0, a1 = x0 - self.left, x1 - self.left
        d0, d1 = self.top - y1, self.top - y0
        width, height = self.right - self.left, self.top - self.bottom
        if self.rotation == 90:  # displayed clockwise
            a0, d0, a1, d1 = height - d1, a0, height - d0, a1
        elif self.rotation == 180:
            a0, d0, a1, d1 = width - a1, height - d1, width - a0, height - d0
        elif self.rotation == 270:
            a0, d0, a1, d1 = d0, width - a1, d1, width - a0
        s = self.scale
        return (round(a0 * s), round(d0 * s), round(a1 * s), round(d1 * s))


def _clean(word: str) -> str:
    # PDFium marks a line-end hyphen as U+FFFE and may leave U+0002 around it.
    return word.replace("\ufffe", "-").replace("\x02", "")


def _union_f(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _page_text(
    words: list[tuple[int, str, tuple[int, int, int, int]]], plan: RenderPlan
) -> PageText:
    """Words with their line numbers -> lines -> one block."""
    lines: list[Line] = []
    current: list[Word] = []
    last_line = None
    for line, text, box in words:
        if not text:
            continue
        if line != last_line and current:
            lines.append(Line(tuple(current), _union([w.box for w in current]), 1.0))
            current = []
        last_line = line
        current.append(Word(text, box, 1.0))
    if current:
        lines.append(Line(tuple(current), _union([w.box for w in current]), 1.0))
    clean = "\n".join(ln.text for ln in lines)
    blocks = (Block(tuple(lines), _union([ln.box for ln in lines])),) if lines else ()
    return PageText(
        text=clean + "\n" if clean else "",
        confidence=1.0 if lines else 0.0,
        width=plan.width,
        height=plan.height,
        blocks=blocks,
        dpi=round(plan.dpi, 2),
    )


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
