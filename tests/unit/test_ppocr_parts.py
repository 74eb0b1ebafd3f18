"""The ppocr-torch engine's pieces on synthetic data: no models, fast.

DB unclipping against pyclipper + OpenCV (what PaddleOCR runs), corner order, crop
sampling, CTC decoding, page layout and the CPU preparation step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from ocrbatch.engines.ppocr.crops import REC_HEIGHT, crop_batches, plan_crops  # noqa: E402
from ocrbatch.engines.ppocr.ctc import Decoded, charset_from_metadata, ctc_greedy  # noqa: E402
from ocrbatch.engines.ppocr.detection import (  # noqa: E402
    order_corners,
    rect_corners,
    sample_quads,
    unclip,
)
from ocrbatch.engines.ppocr.layout import TextQuad, assemble_page  # noqa: E402
from ocrbatch.engines.ppocr.page import prepare_page  # noqa: E402


def test_vectorized_unclip_equals_pyclipper_and_min_area_rect() -> None:
    pyclipper = pytest.importorskip("pyclipper")
    rng = np.random.default_rng(1)
    rects = np.column_stack(
        [
            rng.uniform(100, 400, 50),
            rng.uniform(100, 400, 50),
            rng.uniform(5, 300, 50),
            rng.uniform(4, 40, 50),
            rng.uniform(-20, 20, 50),
        ]
    ).astype(np.float32)
    ours = unclip(rects, 1.6)
    for rect, grown in zip(rects, ours, strict=True):
        box = rect_corners(rect[None])[0]
        w, h = rect[2], rect[3]
        distance = w * h * 1.6 / (2 * (w + h))
        offset = pyclipper.PyclipperOffset()
        offset.AddPath(box.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        poly = np.array(offset.Execute(distance)[0], np.float32)
        (_, _), (rw, rh), _ = cv2.minAreaRect(poly)
        want = sorted((rw, rh))
        got = sorted((float(grown[2]), float(grown[3])))
        # pyclipper works on integer coordinates: a pixel or so of rounding.
        assert got == pytest.approx(want, abs=2.0)


def test_corners_come_out_tl_tr_br_bl() -> None:
    pts = np.array([[[10, 50], [90, 12], [10, 10], [90, 52]]], np.float32)
    out = order_corners(pts)[0]
    assert out.tolist() == [[10, 10], [90, 12], [90, 52], [10, 50]]


def test_sample_quads_reads_pixel_centres_of_the_right_page() -> None:
    h, w = 40, 64
    xs = torch.arange(w, dtype=torch.float32).expand(h, w)
    pages = torch.stack([xs, xs + 1000.0])[:, None]  # page 1 = page 0 + 1000
    # A quad from pixel-centre x=8 to x=23 (16 pixels wide), rows 5..14.
    quad = torch.tensor([[[7.5, 4.5], [23.5, 4.5], [23.5, 14.5], [7.5, 14.5]]])
    for page in (0, 1):
        out = sample_quads(pages, quad, torch.tensor([page]), 10, 16)
        row = out[0, 0, 3]
        assert torch.allclose(row, torch.arange(8.0, 24.0) + 1000.0 * page, atol=1e-3)


def test_crops_are_48_high_batched_by_width_and_padded_with_zero() -> None:
    quads = np.array(
        [
            [[0, 0], [479, 0], [479, 23], [0, 23]],  # 479 x 23 between corners
            [[0, 30], [59, 30], [59, 53], [0, 53]],  # short: padded to 320
            [[100, 0], [123, 0], [123, 59], [100, 59]],  # tall: read turned
        ],
        np.float32,
    )
    plan = plan_crops(quads)
    assert plan.widths.tolist() == [1000, 124, 124]  # ceil(48 * 479 / 23) etc.
    pages = torch.ones((1, 1, 64, 512))
    batches = list(crop_batches(pages, np.zeros(3, np.int64), plan, max_columns=3 * 1024))
    assert sum(len(rows) for rows, _ in batches) == 3
    for rows, crops in batches:
        assert crops.shape[1:3] == (3, REC_HEIGHT)
        assert crops.shape[3] >= 320
        for r, crop in zip(rows, crops, strict=True):
            width = int(plan.widths[r])
            assert torch.allclose(crop[:, :, :width], torch.ones(()), atol=1e-5)
            assert torch.all(crop[:, :, width:] == 0.0)


def test_ctc_greedy_drops_blanks_and_repeats() -> None:
    charset = charset_from_metadata("a\nb\nc")
    assert charset == ["", "a", "b", "c", " "]
    steps = [1, 1, 0, 1, 2, 2, 4, 3, 0]  # a a _ a b b ' ' c _
    scores = torch.full((1, len(steps), len(charset)), 0.01)
    for t, k in enumerate(steps):
        scores[0, t, k] = 0.9
    (d,) = ctc_greedy(scores, charset)
    assert d.text == "aab c"
    assert d.steps.tolist() == [0, 3, 4, 6, 7]
    assert d.length == len(steps)
    assert np.allclose(d.probs, 0.9)


def _quad(x0: float, y0: float, x1: float, y1: float, text: str, conf: float = 0.9) -> TextQuad:
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
    steps = np.arange(len(text)) * 2
    return TextQuad(corners, Decoded(text, np.full(len(text), conf), steps, 2 * len(text)), 1.0)


def test_layout_orders_rows_splits_far_apart_fields_and_boxes_words() -> None:
    quads = [
        _quad(600, 100, 700, 120, "TOTAL"),  # same row as "Name here", far right
        _quad(10, 10, 200, 30, "Hello world"),
        _quad(10, 102, 150, 122, "Name here"),
        _quad(10, 40, 100, 60, "second", 0.5),
    ]
    page = assemble_page(quads, 800, 200, 300.0)
    lines = [ln for b in page.blocks for ln in b.lines]
    assert [ln.text for ln in lines] == ["Hello world", "second", "Name here", "TOTAL"]
    # The reading order of every line detector (engines/layout.py): a field and its amount
    # on one row read as one text line (as receipts and forms are read); the wide gap
    # above "Name here" ends the first block.
    assert page.text == "Hello world\nsecond\n\nName here TOTAL\n"
    assert [len(b.lines) for b in page.blocks] == [2, 2]
    hello, world = lines[0].words
    assert hello.box[0] == 10 and world.box[2] <= 200 and hello.box[2] < world.box[0]
    assert all(0.0 <= w.confidence <= 1.0 and w.polygon is None for w in page.words)
    assert 0.0 < page.confidence < 1.0 and page.dpi == 300.0


def test_rotated_text_keeps_polygons() -> None:
    angle = np.deg2rad(10)
    c, s = np.cos(angle), np.sin(angle)
    base = np.array([[0, 0], [200, 0], [200, 20], [0, 20]], np.float64)
    corners = (base @ np.array([[c, s], [-s, c]]) + [50, 50]).astype(np.float32)
    text = "tilted words"
    d = Decoded(text, np.full(len(text), 0.8), np.arange(len(text)), len(text))
    page = assemble_page([TextQuad(corners, d, 1.0)], 400, 200, None)
    words = list(page.words)
    assert [w.text for w in words] == ["tilted", "words"]
    assert all(w.polygon is not None and len(w.polygon) == 4 for w in words)


def test_two_columns_are_read_column_by_column_under_a_full_width_title() -> None:
    quads = [_quad(10, 10, 610, 40, "A title across both columns")]
    for row in range(4):
        y = 80 + row * 30
        quads.append(_quad(10, y, 290, y + 24, f"left {row}"))
        quads.append(_quad(330, y, 610, y + 24, f"right {row}"))
    page = assemble_page(quads, 620, 300, None)
    assert [t for t in page.text.split("\n") if t] == [
        "A title across both columns",
        *(f"left {r}" for r in range(4)),
        *(f"right {r}" for r in range(4)),
    ]


def test_empty_page_is_a_result() -> None:
    page = assemble_page([], 100, 50, None)
    assert page.text == "" and page.blocks == () and page.confidence == 0.0


def test_prepare_keeps_grey_as_one_channel_colour_as_bgr_and_caps_size() -> None:
    grey = Image.new("L", (3000, 1500), 200)
    p = prepare_page(grey, 2000)
    assert p.pixels.shape == (1000, 2000) and p.scale == pytest.approx(2000 / 3000)
    assert (p.width, p.height) == (3000, 1500) and p.pixels.flags.writeable
    rgb = Image.new("RGB", (10, 10), (255, 0, 0))
    q = prepare_page(rgb, 2000)
    assert q.pixels.shape == (10, 10, 3) and q.pixels[0, 0].tolist() == [0, 0, 255]
    bilevel = Image.new("1", (20, 10), 1)
    bilevel.info["dpi"] = (1, 1)
    r = prepare_page(bilevel, 2000)
    assert r.pixels.dtype == np.uint8 and r.pixels.max() == 255 and r.dpi is None


@pytest.mark.parametrize("mode", ["SAME_UPPER", "SAME_LOWER"])
def test_same_padding_of_stride_one_converts_and_agrees_with_onnxruntime(
    tmp_path: Path, mode: str
) -> None:
    """PP-OCRv6's models pad a few 2x2 convolutions and poolings with auto_pad=SAME_UPPER,
    which onnx2torch refuses: written out as explicit pads, the module computes what
    onnxruntime computes (odd and even sizes alike)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import importlib.util

    if importlib.util.find_spec("onnx2torch") is None:  # imported with its torchvision stand-in
        pytest.skip("onnx2torch is not installed")

    from onnx import TensorProto, helper, numpy_helper

    from ocrbatch.engines.ppocr.conversion import to_torch

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 2, 2)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[2, 2], auto_pad=mode),
        helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], auto_pad=mode),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, None, None])],
        initializer=[weight],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "same.onnx"
    onnx.save(model, str(path))
    module, _meta = to_torch(path, (1, 3, 8, 8))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((8, 8), (7, 9)):
        x = rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)
        want = session.run(None, {"x": x})[0]
        with torch.no_grad():
            got = module(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape == (1, 4, h, w)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
