"""The ppocr-torch engine on the CPU: converted models, text, PageText, batch executor.

Converted modules must agree with onnxruntime on the shipped PP-OCRv4 models; text must
equal RapidOCR 1.4.4's (onnxruntime, same models, classifier off) within a stated CER.
GPU-only checks skip cleanly without CUDA. Pages are small: CPU inference is slow.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("onnx2torch") is None:  # importing it needs our placeholder
    pytest.skip("onnx2torch is not installed", allow_module_level=True)
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("rapidocr_onnxruntime")

from ocrbatch.accuracy import normalize  # noqa: E402
from ocrbatch.engines import engine_class  # noqa: E402
from ocrbatch.engines.ppocr import PpocrTorchEngine, default_models  # noqa: E402
from ocrbatch.engines.ppocr.conversion import load_module  # noqa: E402
from ocrbatch.errors import ConfigError  # noqa: E402
from ocrbatch.model import PageTask, PageText  # noqa: E402
from ocrbatch.tools.images import load_image  # noqa: E402

from ..conftest import DATA  # noqa: E402

PHOTOTEST = DATA / "tesseract_test" / "phototest.tif"
EUROTEXT = DATA / "tesseract_test" / "eurotext.tif"
# Measured at det_side 960 on the CPU: CER 0.000 (phototest) and 0.0024 (eurotext, one
# bracket read differently) against RapidOCR; the paths differ only in resampling
# details (page and crop interpolation, detection size). The bound leaves a margin.
CER_BOUND = 0.02

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("ppocr-cache"))


@pytest.fixture(scope="module")
def engine(cache: str) -> Iterator[PpocrTorchEngine]:
    eng = PpocrTorchEngine({"device": "cpu", "cache_dir": cache, "det_side": 960})
    eng.open()
    yield eng
    eng.close()


def _task(path: Path, i: int = 1) -> PageTask:
    return PageTask(i, 1, i, str(path), 0, 1)


_read: dict[Path, PageText] = {}


def _ocr(engine: PpocrTorchEngine, path: Path) -> PageText:
    """The CPU engine's page, read once per test module (CPU inference is slow)."""
    if path not in _read:
        _read[path] = engine.recognize(load_image(str(path), 0, max_pixels=10**9), _task(path))
    return _read[path]


def _rapidocr_text(path: Path) -> str:
    from rapidocr_onnxruntime import RapidOCR

    result, _ = RapidOCR()(str(path), use_cls=False)
    return "\n".join(r[1] for r in result or [])


def _cer(hyp: str, ref: str) -> float:
    from rapidfuzz.distance import Levenshtein

    h, r = normalize(hyp), normalize(ref)
    return Levenshtein.distance(h, r) / max(1, len(r))


def test_converted_modules_agree_with_onnxruntime(cache: str) -> None:
    det_path, rec_path = default_models()
    rng = np.random.default_rng(0)
    page = np.asarray(load_image(str(PHOTOTEST), 0, max_pixels=10**9).convert("L"), np.float32)
    det_in = np.repeat(page[None, None, :256, :320] / 127.5 - 1.0, 3, axis=1)
    det_in = np.concatenate([det_in, rng.uniform(-1, 1, det_in.shape)]).astype(np.float32)
    rec_in = rng.uniform(-1, 1, (3, 3, 48, 200)).astype(np.float32)
    for path, x, shape in ((det_path, det_in, (1, 3, 64, 64)), (rec_path, rec_in, (2, 3, 48, 64))):
        module, _ = load_module(path, shape, Path(cache))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        want = sess.run(None, {"x": x})[0]
        with torch.inference_mode():
            got = module(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-4
        if path == rec_path:
            assert (got.argmax(-1) == want.argmax(-1)).all()


def test_second_load_comes_from_the_cache(cache: str) -> None:
    det_path, _ = default_models()
    load_module(det_path, (1, 3, 64, 64), Path(cache))
    files = sorted(p.name for p in Path(cache).glob("ch_PP-OCRv4_det_infer-*.pt"))
    assert len(files) == 1  # keyed by the model's hash: converted once, then loaded
    mtime = (Path(cache) / files[0]).stat().st_mtime_ns
    load_module(det_path, (1, 3, 64, 64), Path(cache))
    assert (Path(cache) / files[0]).stat().st_mtime_ns == mtime


@pytest.mark.parametrize("path", [PHOTOTEST, EUROTEXT], ids=lambda p: p.stem)
def test_text_equals_onnxruntime_reference(engine: PpocrTorchEngine, path: Path) -> None:
    ours = _ocr(engine, path).text
    ref = _rapidocr_text(path)
    assert len(normalize(ref)) > 100
    assert _cer(ours, ref) <= CER_BOUND, (ours, ref)


def test_page_follows_the_pagetext_contract(engine: PpocrTorchEngine) -> None:
    page = _ocr(engine, PHOTOTEST)
    assert (page.width, page.height) == (640, 480) and page.dpi == 200.0
    lines = [ln for b in page.blocks for ln in b.lines]
    assert page.text.splitlines() == [ln.text for ln in lines]
    assert len(lines) == 8 and lines[0].text.startswith("This is a lot of 12 point text")
    for ln in lines:
        assert 0.0 <= ln.confidence <= 1.0
        for w in ln.words:
            x0, y0, x1, y1 = w.box
            assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height
            assert ln.box[0] <= x0 and x1 <= ln.box[2] + 1
            assert 0.0 <= w.confidence <= 1.0 and w.polygon is None
    # Word boxes follow the text left to right.
    starts = [w.box[0] for w in lines[0].words]
    assert starts == sorted(starts)


def test_batch_of_pages_reads_like_pages_one_by_one(engine: PpocrTorchEngine) -> None:
    photo = load_image(str(PHOTOTEST), 0, max_pixels=10**9)
    blank = photo.copy()
    blank.paste(1, (0, 0, *blank.size))
    euro = load_image(str(EUROTEXT), 0, max_pixels=10**9)
    batch = engine.recognize_batch([engine.prepare(p) for p in (photo, blank, euro)])
    # Pages of different sizes share one padded batch: only the padding next to the
    # smaller page's edges differs from reading it alone.
    assert _cer(batch[0].text, _ocr(engine, PHOTOTEST).text) <= 0.005
    assert _cer(batch[2].text, _ocr(engine, EUROTEXT).text) <= 0.005
    assert batch[1].text == "" and batch[1].blocks == ()  # an empty page is a result


def test_registered_and_checked() -> None:
    assert engine_class("ppocr-torch") is PpocrTorchEngine
    with pytest.raises(ConfigError, match="model not found"):
        PpocrTorchEngine.check({"det_model": "/nonexistent.onnx"})
    with pytest.raises(ConfigError, match=r"--engine-opt device \(ppocr-torch engine\): "):
        PpocrTorchEngine({"device": "tpu"})


def test_batched_executor_runs_the_engine_on_cpu(cache: str, tmp_path: Path) -> None:
    from ocrbatch.executors.batched import BatchedExecutor
    from ocrbatch.pipeline import WorkerSpec

    options = {"device": "cpu", "cache_dir": cache, "det_side": 960, "det_batch": 2}
    ex = BatchedExecutor(1, ["cpu"], timeout=240)
    ex.start(WorkerSpec("ppocr-torch", options, timeout=240))
    try:
        missing = tmp_path / "missing.png"
        for i, path in enumerate([PHOTOTEST, missing, PHOTOTEST]):
            ex.submit(_task(path, i))
        outcomes = {}
        while ex.in_flight():
            for o in ex.collect(1.0):
                outcomes[o.task_id] = o
    finally:
        ex.close()
    assert not outcomes[1].ok and outcomes[1].error_kind == "input"
    assert outcomes[0].ok and outcomes[2].ok
    assert outcomes[0].page is not None and outcomes[2].page is not None
    text = outcomes[0].page["text"]
    assert text == outcomes[2].page["text"] and "lazy fox" in text


@needs_cuda
@pytest.mark.gpu
def test_fp16_on_cuda_reads_like_fp32_on_cpu(cache: str, engine: PpocrTorchEngine) -> None:
    gpu = PpocrTorchEngine({"device": "cuda", "cache_dir": cache, "det_side": 960})
    gpu.open()
    try:
        for path in (PHOTOTEST, EUROTEXT):
            page = gpu.recognize(load_image(str(path), 0, max_pixels=10**9), _task(path))
            assert _cer(page.text, _ocr(engine, path).text) <= 0.005
    finally:
        gpu.close()


@needs_cuda
@pytest.mark.gpu
def test_make_executor_picks_the_batch_executor_on_cuda() -> None:
    from ocrbatch.executors import make_executor
    from ocrbatch.executors.batched import BatchedExecutor

    ex = make_executor(
        "parallel",
        2,
        timeout=60,
        recycle_after=10,
        engine="ppocr-torch",
        engine_options={"device": "auto"},
    )
    assert isinstance(ex, BatchedExecutor) and ex.devices[0].startswith("cuda")


def test_make_executor_keeps_the_page_pool_on_cpu() -> None:
    from ocrbatch.executors import make_executor
    from ocrbatch.executors.local import LocalExecutor

    ex = make_executor(
        "parallel",
        2,
        timeout=60,
        recycle_after=10,
        engine="ppocr-torch",
        engine_options={"device": "cpu"},
    )
    assert isinstance(ex, LocalExecutor)


def test_a_job_runs_end_to_end_with_the_engine(cache: str, tmp_path: Path) -> None:
    import json

    import ocrbatch

    summary = ocrbatch.run(
        [str(PHOTOTEST)],
        tmp_path / "out",
        db=f"sqlite:///{tmp_path / 'jobs.db'}",
        config={
            "mode": "sequential",
            "engine": "ppocr-torch",
            "engine_options": {"device": "cpu", "cache_dir": cache, "det_side": 960},
        },
    )
    assert summary["pages"]["completed"] == 1
    (record,) = [
        json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    ]
    assert "lazy fox" in record["text"]
