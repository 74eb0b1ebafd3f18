"""Builders of hostile inputs, shared by the tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

# The tests' own font (tests/data/fonts, see ATTRIBUTION.md): a synthetic page must not
# change when a library changes its default font.
FONT = Path(__file__).resolve().parent / "data" / "fonts" / "DejaVuSans.ttf"


def font(px: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``px`` pixels (the em size; capitals are about 0.73 of it)."""
    return ImageFont.truetype(str(FONT), px)


def good_png(path: Path, text: str = "Hello") -> Path:
    """A small page with ``text`` in 24-px letters (capitals about 17 px tall)."""
    im = Image.new("L", (400, 120), 255)
    ImageDraw.Draw(im).text((10, 40), text, fill=0, font=font(24))
    im.save(path)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A tiny file whose header claims side x side pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 10))
        + _chunk(b"IEND", b"")
    )
    return path


def make_bad_inputs(folder: Path, sample_jpeg: Path | None = None) -> dict[str, Path]:
    """name -> path of each kind of bad input (see the foundation issue, point 8)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["empty"] = folder / "empty.png"
    files["empty"].write_bytes(b"")
    png = good_png(folder / "_good.png").read_bytes()
    (folder / "_good.png").unlink()
    files["truncated_png"] = folder / "truncated.png"
    files["truncated_png"].write_bytes(png[: len(png) // 2])
    if sample_jpeg is None:
        sample_jpeg = folder / "_s.jpg"
        Image.new("RGB", (640, 480), (200, 120, 40)).save(sample_jpeg, quality=90)
    jpg = sample_jpeg.read_bytes()
    files["truncated_jpeg"] = folder / "truncated.jpg"
    files["truncated_jpeg"].write_bytes(jpg[: len(jpg) // 3])
    if sample_jpeg.parent == folder:
        sample_jpeg.unlink()
    files["text_as_png"] = folder / "notes.png"
    files["text_as_png"].write_text("this is a text file, not an image\n")
    files["bomb"] = bomb_png(folder / "bomb.png")
    return files


# -- PDFs (pikepdf, a dev dependency, builds the hostile ones) -------------------------


def image_pdf(path: Path, images: list[Image.Image], dpi: float = 200.0) -> Path:
    """A scanned-style PDF: one image per page (Pillow's own PDF writer)."""
    first, *rest = images
    first.save(path, "PDF", save_all=True, append_images=rest, resolution=dpi)
    return path


def text_pdf(
    path: Path,
    pages: list[str],
    *,
    size: tuple[float, float] = (612, 792),
    rotate: int = 0,
    encryption: object = None,
) -> Path:
    """A born-digital PDF: each page shows its text in Helvetica (a real text layer)."""
    import pikepdf

    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )
    for text in pages:
        lines = text.split("\n")
        ops = ["BT", "/F1 14 Tf", "16 TL", f"72 {size[1] - 72} Td"]
        for ln in lines:
            esc = ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({esc}) Tj T*")
        ops.append("ET")
        page = pdf.add_blank_page()
        # set directly: pikepdf's helper refuses sizes past the spec's 14,400 units,
        # and hostile files do not follow the spec
        page.MediaBox = [0, 0, size[0], size[1]]
        page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.Contents = pdf.make_stream("\n".join(ops).encode("latin-1"))
        if rotate:
            page.Rotate = rotate
    pdf.save(path, encryption=encryption or False)
    return path


def encrypted_pdf(path: Path, user: str, owner: str = "owner-secret") -> Path:
    """A text PDF encrypted with AES-256; ``user`` may be empty (opens without one)."""
    import pikepdf

    return text_pdf(
        path,
        ["Secret page one", "Secret page two"],
        encryption=pikepdf.Encryption(user=user, owner=owner, R=6),
    )


def no_pages_pdf(path: Path) -> Path:
    """A well-formed PDF whose page tree is empty."""
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    del pdf.pages[0]
    pdf.save(path)
    return path


def huge_page_pdf(path: Path, side_pt: float = 30_000.0) -> Path:
    """One page of side_pt x side_pt points with large text (a poster)."""
    return text_pdf(path, ["HUGE"], size=(side_pt, side_pt))


def truncated_pdf(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def broken_frame_tiff(path: Path, frames: list[Image.Image], broken: int) -> Path:
    """A multi-page TIFF whose frame ``broken`` (0-based) has garbage pixel data."""
    first, *rest = frames
    first.save(path, save_all=True, append_images=rest, compression="tiff_deflate")
    from PIL import TiffImagePlugin

    data = bytearray(path.read_bytes())
    with Image.open(path) as im:
        im.seek(broken)
        tags = im.tag_v2
        offset = tags[TiffImagePlugin.STRIPOFFSETS][0]
        length = tags[TiffImagePlugin.STRIPBYTECOUNTS][0]
    data[offset : offset + length] = b"\xff" * length  # not a deflate stream
    path.write_bytes(bytes(data))
    return path
