"""Every job option is defined once, in RunConfig, and every face carries it: `run` and
`submit` (the job's options), `worker` (where jobs run), and the stored job that the
queue worker reads. A field added to RunConfig without a CLI option fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ocrbatch.cli import app
from ocrbatch.cli.options import NOT_OPTIONS
from ocrbatch.config import RunConfig, cli_fields
from ocrbatch.pipeline import WorkerSpec
from ocrbatch.session import job_config
from ocrbatch.store import Store
from tests.badfiles import good_png

# A value other than the default for every field, as typed on the command line, and as
# it must be stored. (A new RunConfig field needs a line here: the test below says so.)
SAMPLES: dict[str, tuple[str, Any]] = {
    "engine": ("fake", "fake"),
    "mode": ("sequential", "sequential"),
    "workers": ("3", 3),
    "max_workers": ("2", 2),
    "timeout": ("33", 33.0),
    "max_retries": ("5", 5),
    "retry_backoff": ("0.5", 0.5),
    "retry_backoff_max": ("9", 9.0),
    "recycle_after": ("7", 7),
    "worker_nice": ("5", 5),
    "price_per_cpu_hour": ("0.25", 0.25),
    "format": ("CSV,pdf", ["jsonl", "csv", "pdf"]),
    "dpi": ("150", 150.0),
    "pages": ("2-3", "2-3"),
    "force_ocr": ("", True),
    "preprocess": ("auto,-binarize", "auto,-binarize"),
    "max_pixels": ("1000000", 1_000_000),
    "image_dpi": ("120", 120.0),
    "password": ("s3cret", "s3cret"),
    "cache_dir": ("/tmp/ocrbatch-test-cache", "/tmp/ocrbatch-test-cache"),
    "cache_max_mb": ("10", 10),
    "ground_truth": ("{gt}", "{gt}"),
    "casefold": ("", True),
    "ignore_chars": ("~", "~"),
    "min_confidence": ("0.7", 0.7),
    "ray_address": ("auto", "auto"),
    "ship_pages": ("never", "never"),
    "cpus_per_worker": ("2", 2.0),
    "gpus_per_worker": ("1", 1.0),
    "storage_options": ("endpoint_url=http://127.0.0.1:9", {"endpoint_url": "http://127.0.0.1:9"}),
}


def _flag(name: str) -> str:
    _, cli = cli_fields("run").get(name) or cli_fields("submit")[name]
    return str((cli["flags"] or [f"--{name.replace('_', '-')}"])[0]).split("/")[0]


def _options(command: str) -> set[str]:
    from typer.main import get_command

    group = get_command(app)
    cmd = group.commands[command]  # type: ignore[attr-defined]
    return {o for p in cmd.params for o in p.opts}


def test_every_runconfig_field_is_an_option_of_the_commands_of_its_scope() -> None:
    fields = set(RunConfig.model_fields)
    assert fields == set(SAMPLES) | set(NOT_OPTIONS), "a new RunConfig field needs a sample"
    run, submit, worker = _options("run"), _options("submit"), _options("worker")
    for name in SAMPLES:
        scope = (cli_fields("run") | cli_fields("submit"))[name][1]["scope"]
        flag = _flag(name)
        carried = {"job": (run, submit), "run": (run, worker), "queue": (submit,)}[scope]
        for options in carried:
            assert flag in options, f"{flag} ({name}, scope {scope}) missing"
    # The engine's own options: --engine-opt and the Tesseract shortcuts, on both.
    for o in ("--engine-opt", "--lang", "-l", "--psm", "--model", "--tessdata"):
        assert o in run and o in submit


def test_submit_stores_every_job_option_and_the_queue_worker_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good_png(src / "a.png")
    gt = tmp_path / "gt"
    gt.mkdir()
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ["submit", str(src), "--out", str(tmp_path / "out"), "--db", db, "--queue", "q"]
    job_fields = {n for n, (_, cli) in cli_fields("submit").items()}
    for name in sorted(job_fields):
        typed, _ = SAMPLES[name]
        flag = _flag(name)
        args += [flag] if typed == "" else [flag, typed.replace("{gt}", str(gt))]
    monkeypatch.delenv("OCRBATCH_PDF_PASSWORD", raising=False)
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    job = int(re.search(r"job (\d+) submitted", result.output).group(1))  # type: ignore[union-attr]
    with Store(db) as st:
        info = st.get_job(job)
    for name in job_fields:
        want = SAMPLES[name][1]
        if isinstance(want, str):
            want = want.replace("{gt}", str(gt))
        assert info.ocr_config[name] == want, name
    assert info.max_workers == 2  # the job's cap, also a column the queue planner reads
    # What the queue worker builds from the stored job: every page option reaches the
    # workers (WorkerSpec.of is the one mapping).
    spec = WorkerSpec.of(job_config(info))
    assert (spec.engine, spec.timeout, spec.dpi, spec.force_ocr) == ("fake", 33.0, 150.0, True)
    assert (spec.password, spec.preprocess, spec.max_pixels) == ("s3cret", "auto,-binarize", 1e6)
    assert (spec.cache_dir, spec.cache_max_mb) == ("/tmp/ocrbatch-test-cache", 10)
    assert spec.storage_options == {"endpoint_url": "http://127.0.0.1:9"}


def test_worker_takes_where_jobs_run_and_nothing_of_what_a_job_is() -> None:
    worker = _options("worker")
    for o in ("--mode", "--workers", "-j", "--ray-address", "--ship-pages", "--cpus-per-worker"):
        assert o in worker
    for o in ("--dpi", "--engine", "--format", "--timeout", "--password"):
        assert o not in worker


def test_workers_of_the_console_script_do_not_run_it_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """multiprocessing runs a main script again in each worker unless it is a package's
    __main__: the `ocrbatch` script (which only calls ocrbatch.console.main) is marked as one."""
    import importlib
    import multiprocessing.spawn
    import sys
    import types

    console = importlib.import_module("ocrbatch.console")

    script = types.ModuleType("__main__")
    script.__file__ = "/usr/local/bin/ocrbatch"
    script.main = console.main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert "init_main_from_path" in multiprocessing.spawn.get_preparation_data("w")
    console._mark_script()
    data = multiprocessing.spawn.get_preparation_data("w")
    assert data["init_main_from_name"] == "ocrbatch.__main__"  # which workers skip
    assert "init_main_from_path" not in data

    other = types.ModuleType("__main__")  # a user's script: left as it is
    other.__file__ = "/home/me/batch.py"
    monkeypatch.setitem(sys.modules, "__main__", other)
    console._mark_script()
    assert other.__spec__ is None
