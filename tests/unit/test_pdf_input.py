"""PDFs and multi-page TIFFs at the tools and discovery level: counting, text layers,
rendering, page selection, and each hostile document's one-line reason."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from ocrbatch.config import PREPROCESS_STEPS, RunConfig, parse_pages, parse_preprocess, select_pages
from ocrbatch.discovery import DiscoveryOptions, discover
from ocrbatch.errors import DocumentError
from ocrbatch.tools.images import frame_sizes, load_image
from ocrbatch.tools.pdf import page_sizes, render_page, text_layer
from tests.badfiles import (
    broken_frame_tiff,
    encrypted_pdf,
    good_png,
    huge_page_pdf,
    image_pdf,
    no_pages_pdf,
    text_pdf,
    truncated_pdf,
)

BIG = 250_000_000


def _docs(inputs: list[str], **opts: object) -> list:
    return [d for batch in discover(inputs, options=DiscoveryOptions(**opts)) for d in batch]  # type: ignore[arg-type]


def test_pdf_pages_are_counted_and_weighted_without_rendering(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "t.pdf", ["one", "two", "three"])
    poster = text_pdf(tmp_path / "poster.pdf", ["big"], size=(1800, 3600))
    (doc,) = _docs([str(pdf)])
    assert doc.error is None and doc.page_count == 3
    # weight = pixels the worker will render at 300 dpi: 2550 x 3300
    assert doc.page_weights == (2550 * 3300,) * 3
    (big,) = _docs([str(poster)])
    assert big.weight == 7500 * 15000 > doc.weight  # bigger pages are claimed first


def test_page_selection(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "t.pdf", [f"page {i}" for i in range(1, 13)])
    (doc,) = _docs([str(pdf)], pages="1-3,10,11-")
    assert [i for i, _ in doc.page_tasks()] == [0, 1, 2, 9, 10, 11]
    (none,) = _docs([str(pdf)], pages="20-30")
    assert none.error == "no page selected: --pages 20-30 but the document has 12 pages"
    assert parse_pages("2, 5-7,9-") == ((2, 2), (5, 7), (9, None))
    assert select_pages("5-7,6,1", 6) == (0, 4, 5)
    for bad in ("0", "3-1", "a-b", ","):
        with pytest.raises(ValueError):
            parse_pages(bad)


def test_text_layer_words_lines_and_boxes(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "t.pdf", ["Hello world\nSecond line here"])
    page = text_layer(str(pdf), 0, dpi=300, max_pixels=BIG)
    assert page is not None
    assert page.text == "Hello world\nSecond line here\n"
    assert (page.width, page.height, page.dpi) == (2550, 3300, 300.0)
    words = list(page.words)
    assert [w.text for w in words] == ["Hello", "world", "Second", "line", "here"]
    # 72 pt from the left and top at 300 dpi: x = 300 px; words left to right, lines down
    assert abs(words[0].box[0] - 300) <= 2 and words[0].box[1] < words[2].box[1]
    assert words[0].box[2] < words[1].box[0]


def test_text_layer_of_a_rotated_page_is_in_displayed_coordinates(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "r.pdf", ["Sideways"], rotate=90)
    page = text_layer(str(pdf), 0, dpi=72, max_pixels=BIG)
    assert page is not None and (page.width, page.height) == (792, 612)
    (word,) = page.words
    x0, y0, x1, y1 = word.box
    # /Rotate 90 turns the page clockwise: the line runs down the right-hand side
    assert 0 <= x0 < x1 <= 792 and 0 <= y0 < y1 <= 612
    assert x0 > 600 and y1 - y0 > x1 - x0


def test_scanned_pdf_has_no_text_layer_and_renders_grey(tmp_path: Path) -> None:
    scan = Image.new("L", (400, 300), 255)
    pdf = image_pdf(tmp_path / "scan.pdf", [scan, scan], dpi=100)
    assert text_layer(str(pdf), 0, dpi=300, max_pixels=BIG) is None
    image, plan = render_page(str(pdf), 1, dpi=150, max_pixels=BIG)
    assert image.mode == "L" and image.info["dpi"] == (150, 150)
    assert abs(image.width - 600) <= 1 and abs(image.height - 450) <= 1
    assert not plan.reduced


@pytest.mark.parametrize(
    ("build", "password", "reason"),
    [
        ("encrypted_user", None, "encrypted PDF: it needs a password (pass --password)"),
        ("encrypted_user", "wrong", "encrypted PDF: the --password given does not open it"),
        ("no_pages", None, "PDF has no pages (empty or missing page tree)"),
        ("truncated", None, "corrupt or truncated PDF: not a PDF, or damaged"),
        ("garbage", None, "corrupt or truncated PDF: not a PDF, or damaged"),
    ],
)
def test_hostile_pdfs_give_one_line_reasons(
    tmp_path: Path, build: str, password: str | None, reason: str
) -> None:
    good = text_pdf(tmp_path / "good.pdf", ["fine"])
    path = {
        "encrypted_user": lambda: encrypted_pdf(tmp_path / "e.pdf", user="s3cret"),
        "no_pages": lambda: no_pages_pdf(tmp_path / "n.pdf"),
        "truncated": lambda: truncated_pdf(tmp_path / "t.pdf", good),
        "garbage": lambda: (
            (tmp_path / "g.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00" * 500) and tmp_path / "g.pdf"
        ),
    }[build]()
    # a good PDF first: PDFium's stale error state must not leak into the next reason
    encrypted_pdf(tmp_path / "other.pdf", user="x")
    with pytest.raises(DocumentError):
        page_sizes(str(tmp_path / "other.pdf"))
    with pytest.raises(DocumentError) as exc:
        page_sizes(str(path), password)
    assert str(exc.value).startswith(reason) and "\n" not in str(exc.value)
    (doc,) = _docs([str(path)], password=password)
    assert doc.error is not None and doc.error.startswith(reason)


def test_encrypted_pdfs_open_with_empty_or_given_password(tmp_path: Path) -> None:
    empty = encrypted_pdf(tmp_path / "empty.pdf", user="")
    secret = encrypted_pdf(tmp_path / "secret.pdf", user="s3cret")
    assert len(page_sizes(str(empty))) == 2
    assert len(page_sizes(str(secret), "s3cret")) == 2
    page = text_layer(str(secret), 1, dpi=300, max_pixels=BIG, password="s3cret")  # noqa: S106
    assert page is not None and page.text.strip() == "Secret page two"


def test_huge_page_renders_at_a_lower_dpi_within_the_pixel_limit(tmp_path: Path) -> None:
    pdf = huge_page_pdf(tmp_path / "huge.pdf")  # 30,000 x 30,000 pt
    limit = 81_000_000  # the default (250 M) works alike; this keeps the test light
    (doc,) = _docs([str(pdf)], max_pixels=limit)
    assert doc.error is None and doc.weight <= limit
    image, plan = render_page(str(pdf), 0, dpi=300, max_pixels=limit)
    assert plan.reduced and image.width * image.height <= limit
    assert 21 < plan.dpi < 22 and image.info["dpi"][0] == plan.dpi
    assert image.getextrema()[0] < 200  # the text is there
    with pytest.raises(DocumentError, match=r"^page 1 too large: 30000x30000 pt would render at"):
        render_page(str(pdf), 0, dpi=300, max_pixels=1_000_000)


def test_multipage_tiff_frames_and_a_broken_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (300 + 10 * i, 200), 255) for i in range(3)]
    tif = broken_frame_tiff(tmp_path / "scan.tif", frames, broken=1)
    assert frame_sizes(str(tif), BIG, multipage=True) == [(300, 200), (310, 200), (320, 200)]
    (doc,) = _docs([str(tif)])
    assert doc.page_count == 3 and doc.page_weights == (60000.0, 62000.0, 64000.0)
    assert load_image(str(tif), 0, max_pixels=BIG).size == (300, 200)
    with pytest.raises(DocumentError, match=r"^truncated or corrupt image data"):
        load_image(str(tif), 1, max_pixels=BIG)
    assert load_image(str(tif), 2, max_pixels=BIG).size == (320, 200)


def test_symlink_loop_and_odd_file_names(tmp_path: Path) -> None:
    root = tmp_path / "in"
    sub = root / "sub"
    sub.mkdir(parents=True)
    (sub / "loop").symlink_to(root, target_is_directory=True)
    names = ["with space.png", "ünïcödé.png", "new\nline.png", "日本語.png"]
    for n in names:
        good_png(sub / n)
    docs = _docs([str(root)])
    assert sorted(Path(d.path).name for d in docs) == sorted(names)
    assert all(d.error is None and d.page_count == 1 for d in docs)


def test_folder_of_100000_empty_files_is_fast_and_memory_flat(tmp_path: Path) -> None:
    folder = tmp_path / "empties"
    folder.mkdir()
    n = 100_000
    for i in range(n):
        os.close(os.open(folder / f"{i:06d}.png", os.O_CREAT | os.O_WRONLY, 0o644))
    proc = psutil.Process()
    rss0 = peak = proc.memory_info().rss
    t0 = time.perf_counter()
    count = 0
    peak_batch = 0
    for batch in discover([str(folder)]):
        count += len(batch)
        peak_batch = max(peak_batch, len(batch))
        assert all(d.error == "empty file (0 bytes)" for d in batch)
        peak = max(peak, proc.memory_info().rss)
    elapsed = time.perf_counter() - t0
    assert count == n and peak_batch <= 500
    # streamed in batches: memory does not grow with the folder (tracemalloc measured a
    # 4.7 MB peak of Python allocations; RSS is coarser)
    assert peak - rss0 < 40 * 2**20, f"RSS grew {(peak - rss0) / 2**20:.1f} MiB"
    print(f"discovered {n} empty files in {elapsed:.1f} s, RSS +{(peak - rss0) / 2**20:.1f} MiB")


def test_preprocess_spec_and_result_key() -> None:
    assert parse_preprocess("auto") == ("auto", PREPROCESS_STEPS)
    assert parse_preprocess("off") == ("off", ())
    assert parse_preprocess("binarize,deskew") == ("fixed", ("deskew", "binarize"))
    mode, steps = parse_preprocess("auto,-binarize")
    assert mode == "auto" and "binarize" not in steps and "deskew" in steps
    for bad in ("sharpen", "-deskew", "auto,deskew", ""):
        with pytest.raises(ValueError):
            parse_preprocess(bad)
    base = RunConfig()
    assert RunConfig(preprocess="AUTO , -binarize").preprocess == "auto,-binarize"
    assert RunConfig(pages="3, 1-2").pages == "3,1-2"
    # what changes the text changes the key; how it runs does not
    for change in ({"dpi": 200}, {"pages": "1"}, {"force_ocr": True}, {"preprocess": "off"}):
        assert RunConfig(**change).result_key() != base.result_key(), change
    for same in ({"password": "x"}, {"cache_dir": "/tmp/c"}, {"workers": 3}):
        assert RunConfig(**same).result_key() == base.result_key(), same
