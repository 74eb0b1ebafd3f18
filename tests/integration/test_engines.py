"""The engine registry (entry points, `ocrbatch engines`) and the real RapidOCR engine."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from ocrbatch.accuracy import score
from ocrbatch.errors import ConfigError
from ocrbatch.service import make_config
from tests.conftest import DATA

Cli = Callable[..., CompletedProcess[str]]
PHOTOTEST = DATA / "tesseract_test" / "phototest.tif"

THIRD_PARTY = '''
"""A third-party engine, shipped in its own distribution."""
from ocrbatch.engines import EngineBase, EngineInfo
from ocrbatch.model import Block, Line, PageText, Word


class MirrorEngine(EngineBase):
    """Declares only what differs from EngineBase's defaults."""

    name = "mirror"
    memory_per_worker_mb = 50

    def __init__(self, options, *, timeout=None, threads=1):
        self.greeting = options.get("greeting", "hello")

    @classmethod
    def info(cls):
        return EngineInfo("mirror", "9.9", ("xx",), "abacus")

    def recognize(self, image, task):
        w, h = image.size
        word = Word(self.greeting, (0, 0, w, h), 0.5)
        block = Block((Line((word,), (0, 0, w, h), 0.5),), (0, 0, w, h))
        return PageText(f"{self.greeting} {w}x{h}", 0.5, w, h, (block,))


class Bare:
    """An engine written without EngineBase: it declares none of the capabilities."""

    name = "bare"
'''


def _install_third_party(site: Path) -> None:
    """A real distribution on sys.path: a module and a dist-info with an entry point in
    the ocrbatch.engines group, as `pip install` of a third-party package leaves it."""
    (site / "mirror_engine.py").write_text(textwrap.dedent(THIRD_PARTY))
    info = site / "mirror_engine-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mirror-engine\nVersion: 9.9\n")
    (info / "entry_points.txt").write_text(
        "[ocrbatch.engines]\nmirror = mirror_engine:MirrorEngine\nbare = mirror_engine:Bare\n"
    )


def test_third_party_engine_is_found_listed_and_used(cli: Cli, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_third_party(site)
    env = {"PYTHONPATH": str(site)}
    listed = cli("engines", "--json", "--all", env=env, check=True)
    engines = {e["name"]: e for e in json.loads(listed.stdout)}
    assert engines["mirror"]["version"] == "9.9"
    assert engines["mirror"]["package"] == "mirror-engine 9.9"
    assert engines["mirror"]["device"] == "abacus"
    assert {"tesseract", "rapidocr", "fake"} <= set(engines)
    assert "does not declare options_model, " in engines["bare"]["error"]
    assert "subclass ocrbatch.engines.EngineBase" in engines["bare"]["error"]
    # Test stand-ins are listed only when asked for.
    plain = {e["name"] for e in json.loads(cli("engines", "--json", env=env).stdout)}
    assert "fake" not in plain and {"tesseract", "mirror"} <= plain
    out = tmp_path / "out"
    cli(
        "run", str(PHOTOTEST), "--engine", "mirror", "--engine-opt", "greeting=bonjour",
        "--out", str(out), "--workers", "1", env=env, check=True,
    )  # fmt: skip
    rec = json.loads((out / "results.jsonl").read_text())
    assert rec["status"] == "completed" and rec["text"] == "bonjour 640x480"
    # Without the distribution on the path the name is unknown: one clear line.
    proc = cli("run", str(PHOTOTEST), "--engine", "mirror", "--out", str(tmp_path / "o2"))
    assert proc.returncode == 2
    assert "unknown engine 'mirror' (installed: auto, fake, " in proc.stderr
    assert "mirror," not in proc.stderr and "rapidocr, tesseract)" in proc.stderr


def test_engines_table_lists_version_languages_device(cli: Cli) -> None:
    proc = cli("engines", check=True)
    assert "tesseract" in proc.stdout and "5.5" in proc.stdout and "eng" in proc.stdout
    # RapidOCR's runtime: OpenVINO where it is installed (the rapidocr extra), else onnxruntime.
    assert "rapidocr" in proc.stdout
    assert ("openvino" in proc.stdout) or ("onnxruntime" in proc.stdout)


def test_missing_rapidocr_extra_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrbatch.engines.rapidocr import RapidOcrEngine

    monkeypatch.setitem(sys.modules, "rapidocr", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'ocrbatch\[rapidocr\]'"):
        RapidOcrEngine.check({})
    with pytest.raises(ConfigError, match="needs rapidocr"):
        make_config({"engine": "rapidocr"})


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_rapidocr_engine_reads_a_real_page_one_thread_per_worker(runtime: str) -> None:
    pytest.importorskip("rapidocr")
    pytest.importorskip(runtime)
    from ocrbatch.engines.rapidocr import RapidOcrEngine
    from ocrbatch.engines.runtime import OpenVinoSession
    from ocrbatch.model import PageTask
    from ocrbatch.tools.images import load_image

    engine = RapidOcrEngine({"runtime": runtime}, threads=1)
    engine.open()
    try:
        assert engine.runtime.startswith(runtime)  # also before onnxruntime's lazy models
        image = load_image(str(PHOTOTEST), max_pixels=10**8)
        page = engine.recognize(image, PageTask(1, 1, 1, str(PHOTOTEST), 0, 1))
        if runtime == "onnxruntime":
            sessions = [engine._ocr.text_det.session.session, engine._ocr.text_rec.session.session]
            assert all(s.get_session_options().intra_op_num_threads == 1 for s in sessions)
            assert engine.runtime == "onnxruntime"
        else:
            ov = [engine._ocr.text_det.session, engine._ocr.text_rec.session]
            assert all(isinstance(s, OpenVinoSession) and s.threads == 1 for s in ov)
            assert engine.runtime in ("openvino bf16", "openvino f32")
        assert engine._ocr.text_cls is None  # the orientation classifier stays off
    finally:
        engine.close()
    gt = PHOTOTEST.with_name("phototest.gt.txt").read_text()
    assert score(page.text, gt).cer < 0.02, page.text
    words = list(page.words)
    assert len(words) >= 50
    assert all(0 <= w.box[0] < w.box[2] <= 640 and 0 <= w.box[1] < w.box[3] <= 480 for w in words)
    assert all(0.0 <= w.confidence <= 1.0 for w in words)
    assert words[0].text == "This" and words[0].box[0] < 60 and words[0].box[1] < 100


def test_openvino_f32_reads_as_onnxruntime_does() -> None:
    """precision=f32 is the same arithmetic as onnxruntime's: the same text."""
    pytest.importorskip("rapidocr")
    pytest.importorskip("openvino")
    from ocrbatch.engines.rapidocr import RapidOcrEngine
    from ocrbatch.model import PageTask
    from ocrbatch.tools.images import load_image

    image = load_image(str(PHOTOTEST), max_pixels=10**8)
    texts = []
    for opts in ({"runtime": "onnxruntime"}, {"runtime": "openvino", "precision": "f32"}):
        engine = RapidOcrEngine(opts)
        engine.open()
        try:
            texts.append(engine.recognize(image, PageTask(1, 1, 1, str(PHOTOTEST), 0, 1)).text)
        finally:
            engine.close()
    assert texts[0] == texts[1]


def test_runtime_openvino_without_the_package_is_a_clear_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("rapidocr")
    from ocrbatch.engines.rapidocr import RapidOcrEngine

    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ConfigError, match=r"runtime=openvino needs the openvino package"):
        RapidOcrEngine.check({"runtime": "openvino"})
    RapidOcrEngine.check({"runtime": "auto"})  # auto falls back to onnxruntime
    assert RapidOcrEngine({}).runtime == "onnxruntime"


def test_rapidocr_runs_in_a_worker_pool(tmp_path: Path, db_url: str) -> None:
    pytest.importorskip("rapidocr")
    import ocrbatch

    out = tmp_path / "out"
    summary = ocrbatch.run(
        [str(PHOTOTEST)], out, db=db_url, config={"engine": "rapidocr", "workers": 1}
    )
    assert summary["documents"]["completed"] == 1
    rec = json.loads((out / "results.jsonl").read_text())
    gt = PHOTOTEST.with_name("phototest.gt.txt").read_text()
    assert score(rec["text"], gt).cer < 0.02
    assert summary["accuracy"]["cer"] < 0.02  # phototest.gt.txt lies beside it


@pytest.mark.parametrize("name", ["tesseract", "rapidocr"])
def test_a_blank_page_is_an_empty_result_not_an_error(name: str) -> None:
    from PIL import Image

    from ocrbatch.engines import engine_class
    from ocrbatch.model import PageTask

    if name == "rapidocr":
        pytest.importorskip("rapidocr")
    engine = engine_class(name)({})
    engine.open()
    try:
        page = engine.recognize(Image.new("L", (600, 400), 255), PageTask(1, 1, 1, "x", 0, 1))
    finally:
        engine.close()
    assert (page.text.strip(), page.blocks, page.confidence) == ("", (), 0.0)
    assert (page.width, page.height) == (600, 400)


def _auto_env(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH for a CLI subprocess that sees the ``auto`` engine: as installed, or
    (a checkout run through PYTHONPATH whose install predates it) through a dist-info."""
    import os

    from ocrbatch.engines import engine_names

    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if "auto" not in engine_names():
        site = tmp_path / "site"
        info = site / "ocrbatch_auto_entry-0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: auto-entry\nVersion: 0\n")
        (info / "entry_points.txt").write_text(
            "[ocrbatch.engines]\nauto = ocrbatch.engines.routing:AutoEngine\n"
        )
        paths.append(str(site))
    return {"PYTHONPATH": os.pathsep.join(paths)}


def test_auto_engine_routes_real_pages_and_eval_counts_the_routes(cli: Cli, tmp_path: Path) -> None:
    """A clean typed page goes to Tesseract, a small grey receipt to PP-OCR; each page's
    route and why are in results.jsonl, and `ocrbatch eval` counts them per folder (over
    the pages it scores, as it does their confidence)."""
    pytest.importorskip("rapidocr")
    from tests.unit.test_routing import clean_typed_page, small_noisy_receipt

    root = tmp_path / "in"
    (root / "book").mkdir(parents=True)
    (root / "receipts").mkdir()
    clean_typed_page().save(root / "book" / "page.png", dpi=(300, 300))
    small_noisy_receipt().save(root / "receipts" / "till.png")
    (root / "receipts" / "till.gt.txt").write_text("COFFEE x1\n")
    (root / "book" / "page.gt.txt").write_text("The quick brown fox\n")  # only to be scored
    out = tmp_path / "out"
    env = _auto_env(tmp_path)
    cli("run", str(root), "--engine", "auto", "--out", str(out), "--workers", "1", env=env,
        check=True)  # fmt: skip
    lines = (out / "results.jsonl").read_text().splitlines()
    recs = {Path(r["path"]).name: r for r in map(json.loads, lines)}
    book, till = recs["page.png"]["page_results"][0], recs["till.png"]["page_results"][0]
    assert book["info"]["route"] == "tesseract", book["info"]
    assert book["info"]["route_reason"].startswith("clean print")
    assert book["info"]["route_features"]["tesseract_confidence"] >= 0.9
    assert till["info"]["route"] == "ppocr" and till["info"]["route_reason"].startswith("letters")
    assert "COFFEE" in recs["till.png"]["text"] and "quick" in recs["page.png"]["text"]
    summary = json.loads((out / "summary.json").read_text())
    ev = json.loads(cli("eval", str(summary["job"]), "--json", env=env, check=True).stdout)
    assert ev["accuracy"]["by_folder"]["receipts"]["routes"] == {"ppocr": 1}
    assert ev["accuracy"]["routes"] == {"ppocr": 1, "tesseract": 1}
    table = cli("eval", str(summary["job"]), env={**env, "COLUMNS": "200"}, check=True).stdout
    assert "routes" in table and "ppocr 1" in table
