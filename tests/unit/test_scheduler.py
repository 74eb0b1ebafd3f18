"""The coordinator with the fake engine, the real pebble pool and a real SQLite file."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

import ocrbatch
from tests.badfiles import good_png


def _inputs(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        good_png(folder / n, text=n)
    return folder


def _results(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "results.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert len(recs) == len({r["path"] for r in recs}), "a document appears twice"
    return {Path(r["path"]).name: r for r in recs}


def _config(**fake: Any) -> dict[str, Any]:
    return {
        "engine": "fake",
        "engine_options": fake,
        "workers": 2,
        "timeout": 1.5,
        "max_retries": 1,
        "retry_backoff": 0.0,
        # Plumbing tests: no preprocessing heuristics between the page and the engine.
        "preprocess": "off",
    }


def test_hang_is_killed_at_timeout_crash_is_retried_then_failed_rest_completes(
    tmp_path: Path, db_url: str
) -> None:
    src = _inputs(
        tmp_path / "in", [f"ok{i}.png" for i in range(6)] + ["hang.png", "crash.png", "segv.png"]
    )
    out = tmp_path / "out"
    summary = ocrbatch.run(
        [src], out, db=db_url, config=_config(hang_on="hang", crash_on="crash", segfault_on="segv")
    )
    res = _results(out)
    assert summary["documents"] == {
        "total": 9,
        "processed": 9,
        "completed": 6,
        "failed": 3,
        "reused": 0,
    }
    assert all(res[f"ok{i}.png"]["status"] == "completed" for i in range(6))
    assert res["hang.png"]["error"] == "timed out after 1.5s; the worker was killed and replaced"
    assert res["crash.png"]["error"] == "worker process died (exit code 3)"
    assert res["segv.png"]["error"] == "worker process died (killed by SIGSEGV)"
    for name in ("hang.png", "crash.png", "segv.png"):
        assert res[name]["page_results"][0]["retries"] == 1  # retried once, then failed
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(Path(e["path"]).name for e in errors) == ["crash.png", "hang.png", "segv.png"]
    assert summary["failures_by_kind"] == {"timeout": 1, "crash": 2}


def test_a_page_that_crashes_once_succeeds_on_retry(tmp_path: Path, db_url: str) -> None:
    src = _inputs(tmp_path / "in", ["a.png", "crash.png"])
    summary = ocrbatch.run(
        [src], tmp_path / "out", db=db_url, config=_config(crash_on="crash", crash_attempts=1)
    )
    assert summary["documents"]["completed"] == 2 and summary["retries"] == 1


def test_workers_are_recycled(tmp_path: Path, db_url: str) -> None:
    src = _inputs(tmp_path / "in", [f"p{i}.png" for i in range(8)])
    ocrbatch.run([src], tmp_path / "out", db=db_url, config={**_config(), "recycle_after": 2})
    workers = {r["page_results"][0]["worker"] for r in _results(tmp_path / "out").values()}
    assert len(workers) >= 4  # 8 pages, 2 pages per worker process at most


def test_sequential_mode(tmp_path: Path, db_url: str) -> None:
    src = _inputs(tmp_path / "in", ["a.png", "b.png", "bad.png"])
    summary = ocrbatch.run(
        [src], tmp_path / "out", db=db_url, config={**_config(bad_on="bad"), "mode": "sequential"}
    )
    assert summary["documents"]["completed"] == 2 and summary["workers"] == 1
    assert _results(tmp_path / "out")["bad.png"]["error"] == "fake: unreadable document"


def test_rerun_skips_done_content_and_force_redoes_it(tmp_path: Path, db_url: str) -> None:
    src = _inputs(tmp_path / "in", ["a.png", "b.png"])
    first = ocrbatch.run([src], tmp_path / "o1", db=db_url, config=_config())
    assert first["pages"]["ocr"] == 2
    good_png(src / "c.png", text="new")
    second = ocrbatch.run([src], tmp_path / "o2", db=db_url, config=_config())
    assert second["documents"]["reused"] == 2 and second["pages"]["ocr"] == 1
    res = _results(tmp_path / "o2")
    assert res["a.png"]["reused"] and res["a.png"]["text"] == "fake text of a.png page 1"
    forced = ocrbatch.run([src], tmp_path / "o3", db=db_url, config=_config(), force=True)
    assert forced["documents"]["reused"] == 0 and forced["pages"]["ocr"] == 3
    other = ocrbatch.run([src], tmp_path / "o4", db=db_url, config=_config(text="other {name}"))
    assert other["documents"]["reused"] == 0  # other engine options: another result key


def test_all_formats_and_export_rebuilds_them(tmp_path: Path, db_url: str) -> None:
    src = _inputs(tmp_path / "in", ["a.png"])
    _inputs(src / "sub dir", ["b ü.png"])
    out = tmp_path / "out"
    ocrbatch.run([src], out, db=db_url, config={**_config(), "formats": "jsonl,csv,json,txt"})
    rows = _csv_rows(out / "results.csv")
    assert sorted(r["rel_path"] for r in rows) == ["a.png", "sub dir/b ü.png"]
    doc = json.loads((out / "results.json").read_text())
    assert doc[0]["page_results"][0]["blocks"][0]["lines"][0]["words"][0]["box"] == [0, 0, 9, 10]
    assert (out / "text" / "sub dir" / "b ü.png.txt").read_text() == "fake text of b ü.png page 1"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success_rate"] == 1.0 and summary["cost"]["price_per_cpu_hour"] == 0.05
    again = tmp_path / "again"
    ocrbatch.export(summary["job"], db=db_url, format="csv", out=again)
    assert (again / "results.csv").read_bytes() == (out / "results.csv").read_bytes()
    # The same records, but `outputs` says where this export put each document's own
    # files: the run wrote text/ into out, this csv export wrote none into again.
    first, rebuilt = _jsonl(out), _jsonl(again)
    assert [r.pop("outputs") for r in first] == [
        {"txt": "text/a.png.txt"},
        {"txt": "text/sub dir/b ü.png.txt"},
    ]
    assert [r.pop("outputs") for r in rebuilt] == [{}, {}]
    assert rebuilt == first


def _jsonl(out: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_pause_from_another_process_then_resume(tmp_path: Path, db_url: str) -> None:
    """The store is the control channel: a pause set there stops the coordinator."""
    import threading
    import time

    src = _inputs(tmp_path / "in", [f"p{i}.png" for i in range(40)])
    job = ocrbatch.submit([src], tmp_path / "out", db=db_url, config=_config(delay=0.3))

    def pause_soon() -> None:
        # Wait for some pages (worker start-up is slow on a loaded machine), then pause.
        deadline = time.monotonic() + 60
        while ocrbatch.job_status(job, db=db_url)["pages_done"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        ocrbatch.pause(job, db=db_url)

    t = threading.Thread(target=pause_soon)
    t.start()
    paused = ocrbatch.resume(job, db=db_url)
    t.join()
    assert paused["status"] == "paused" and 0 < paused["pages"]["processed"] < 40
    done = ocrbatch.resume(job, db=db_url)
    assert done["status"] == "completed" and done["pages"]["completed"] == 40
    assert len(_results(tmp_path / "out")) == 40


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_empty_input_folder_completes_with_no_documents(
    tmp_path: Path, db_url: str, mode: str
) -> None:
    (tmp_path / "in").mkdir()
    summary = ocrbatch.run(
        [tmp_path / "in"], tmp_path / "out", db=db_url, config={**_config(), "mode": mode}
    )
    assert summary["status"] == "completed" and summary["documents"]["total"] == 0
    assert (tmp_path / "out" / "results.jsonl").read_text() == ""
