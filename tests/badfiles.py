"""Builders of hostile inputs, shared by the tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw


def good_png(path: Path, text: str = "Hello") -> Path:
    im = Image.new("L", (400, 120), 255)
    ImageDraw.Draw(im).text((10, 40), text, fill=0)
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
