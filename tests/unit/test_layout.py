"""Reading order and word mapping for line-detecting engines (no model needed)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from ocrbatch.engines.layout import order_lines, page_blocks, page_text, word
from ocrbatch.engines.rapidocr import page_from_output
from ocrbatch.model import Line, Word


def _line(text: str, x0: int, y0: int, x1: int, y1: int) -> Line:
    return Line((Word(text, (x0, y0, x1, y1), 0.9),), (x0, y0, x1, y1), 0.9)


def _flat(lines: list[Line]) -> list[str]:
    return [ln.text for leaf in order_lines(lines) for row in leaf for ln in row]


def test_two_column_page_is_read_column_by_column_under_a_full_width_title() -> None:
    title = _line("Title", 100, 50, 1500, 100)
    left = [_line(f"L{i}", 100, 200 + 50 * i, 750, 230 + 50 * i) for i in range(4)]
    right = [_line(f"R{i}", 850, 200 + 50 * i, 1500, 230 + 50 * i) for i in range(4)]
    shuffled = [right[1], left[2], title, right[0], left[0], right[3], left[1], left[3], right[2]]
    assert _flat(shuffled) == ["Title", "L0", "L1", "L2", "L3", "R0", "R1", "R2", "R3"]


def test_receipt_rows_stay_rows_label_then_amount() -> None:
    # Short amounts in their own column are fields of a row, not a text column.
    rows = []
    for i, (label, amount) in enumerate([("TEA", "3.00"), ("COFFEE", "4.50"), ("TOTAL", "7.50")]):
        rows += [_line(label, 10, 100 + 40 * i, 200, 125 + 40 * i)]
        rows += [_line(amount, 400, 102 + 40 * i, 470, 127 + 40 * i)]
    assert _flat(rows[::-1]) == ["TEA", "3.00", "COFFEE", "4.50", "TOTAL", "7.50"]
    blocks = page_blocks(rows)
    assert page_text(blocks) == "TEA 3.00\nCOFFEE 4.50\nTOTAL 7.50\n"


def test_paragraphs_split_into_blocks_at_large_gaps() -> None:
    lines = [_line("a", 10, 10, 500, 40), _line("b", 10, 45, 500, 75)]
    lines += [_line("c", 10, 300, 500, 330)]
    blocks = page_blocks(lines)
    assert [[ln.text for ln in b.lines] for b in blocks] == [["a", "b"], ["c"]]
    assert blocks[0].box == (10, 10, 500, 75)
    assert page_text(blocks) == "a\nb\n\nc\n"


def test_word_keeps_polygon_only_when_rotated() -> None:
    upright = word("x", 0.5, [(10, 10), (60, 10), (60, 30), (10, 30)])
    assert upright.polygon is None and upright.box == (10, 10, 60, 30)
    tilted = word("y", 0.5, [(10, 10), (60, 25), (55, 45), (5, 30)])
    assert tilted.polygon == ((10, 10), (60, 25), (55, 45), (5, 30))
    assert tilted.box == (5, 10, 60, 45)


def test_rapidocr_output_maps_onto_page_text() -> None:
    quad1 = [[10, 10], [210, 10], [210, 40], [10, 40]]
    quad2 = [[10, 60], [310, 60], [310, 90], [10, 90]]
    quad3 = [[10, 120], [110, 120], [110, 150], [10, 150]]
    words1 = (
        ("Hello", 0.99, [[10, 10], [100, 10], [100, 40], [10, 40]]),
        ("world", 0.97, [[120, 10], [210, 10], [210, 40], [120, 40]]),
    )
    out = SimpleNamespace(
        boxes=[quad1, quad2, quad3],
        txts=("Hello world", "no word boxes here", "noise"),
        scores=(0.98, 0.9, 0.3),
        word_results=(words1, (), ()),
    )
    page = page_from_output(out, 400, 200, dpi=300.0, text_score=0.5)
    assert page.text == "Hello world\nno word boxes here\n"
    words = list(page.words)
    assert [w.text for w in words] == ["Hello", "world", "no", "word", "boxes", "here"]
    assert words[0].box == (10, 10, 100, 40) and words[0].confidence == 0.99
    # Without word positions, boxes are spread along the line by character count.
    assert words[2].box[0] == 10 and words[-1].box[2] == 310
    assert all(a.box[2] <= b.box[0] for a, b in itertools.pairwise(words[2:]))
    assert page.confidence == pytest.approx(sum(w.confidence for w in words) / 6, abs=1e-4)
    assert page.dpi == 300.0 and (page.width, page.height) == (400, 200)
    empty = page_from_output(SimpleNamespace(boxes=None, txts=None), 5, 5)
    assert empty.text == "" and empty.blocks == ()


def test_cjk_characters_group_into_the_lines_tokens() -> None:
    # The recognizer gives one position per CJK character: the word is the whole token.
    quad = [[0, 0], [300, 0], [300, 30], [0, 30]]
    chars = tuple((c, 0.9, [[i * 30, 0], [i * 30 + 30, 0], [i * 30 + 30, 30], [i * 30, 30]])
                  for i, c in enumerate("谢谢您"))  # fmt: skip
    latin = (("OK", 0.5, [[120, 0], [180, 0], [180, 30], [120, 30]]),)
    out = SimpleNamespace(
        boxes=[quad], txts=("谢谢您 OK",), scores=(0.9,), word_results=(chars + latin,)
    )
    page = page_from_output(out, 400, 100)
    assert [(w.text, w.box) for w in page.words] == [
        ("谢谢您", (0, 0, 90, 30)),
        ("OK", (120, 0, 180, 30)),
    ]
    assert page.text == "谢谢您 OK\n"


def test_heading_across_the_gutter_cuts_columns_into_bands() -> None:
    def col(prefix: str, x: int, y: int) -> list[Line]:
        return [_line(f"{prefix}{i}", x, y + 40 * i, x + 600, y + 30 + 40 * i) for i in range(3)]

    top = col("A", 0, 0) + col("B", 700, 0)
    heading = [_line("Heading", 0, 140, 1300, 175)]
    bottom = col("C", 0, 200) + col("D", 700, 200)
    got = _flat(bottom[::-1] + heading + top[::-1])
    assert got == [
        "A0",
        "A1",
        "A2",
        "B0",
        "B1",
        "B2",
        "Heading",
        "C0",
        "C1",
        "C2",
        "D0",
        "D1",
        "D2",
    ]


def test_a_line_merged_across_the_gutter_is_split_back_into_its_columns() -> None:
    def text_line(words: list[tuple[str, int]], y: int) -> Line:
        ws = tuple(Word(t, (x, y, x + 100, y + 30), 0.9) for t, x in words)
        return Line(ws, (ws[0].box[0], y, ws[-1].box[2], y + 30), 0.9)

    # Words 100 px wide, 20 px apart; columns x 0..580 and 700..1280, gutter 580..700.
    def row(prefix: str, x0: int, y: int) -> Line:
        return text_line([(f"{prefix}{k}", x0 + 120 * k) for k in range(5)], y)

    merged = text_line(
        [(f"a0{k}", 120 * k) for k in range(5)] + [(f"b0{k}", 700 + 120 * k) for k in range(5)], 0
    )
    left = [row(f"a{i}", 0, 40 * i) for i in range(1, 4)]
    right = [row(f"b{i}", 700, 40 * i) for i in range(1, 4)]
    leaves = order_lines([merged, *left, *right])
    got = [ln.text for leaf in leaves for r in leaf for ln in r]
    assert [t.split()[0] for t in got] == ["a00", "a10", "a20", "a30", "b00", "b10", "b20", "b30"]
    assert got[0] == "a00 a01 a02 a03 a04" and got[4] == "b00 b01 b02 b03 b04"


def test_two_columns_above_three_below_without_a_gap_between_them() -> None:
    # Rows of neighbouring columns are not level, so no horizontal gap crosses the page.
    up_l = [_line(f"UL{i}", 0, 40 * i, 600, 40 * i + 30) for i in range(4)]
    up_r = [_line(f"UR{i}", 700, 40 * i + 20, 1300, 40 * i + 50) for i in range(4)]
    low = []
    for c, (x0, x1) in enumerate([(0, 380), (460, 840), (920, 1300)]):
        low += [
            _line(f"L{c}{i}", x0, 165 + 40 * i + 10 * c, x1, 195 + 40 * i + 10 * c)
            for i in range(4)
        ]
    got = _flat(low[::-1] + up_r + up_l[::-1])
    assert got[:8] == ["UL0", "UL1", "UL2", "UL3", "UR0", "UR1", "UR2", "UR3"]
    assert got[8:] == [f"L{c}{i}" for c in range(3) for i in range(4)]
