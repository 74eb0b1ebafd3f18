"""The pool's forkserver opens an engine that declares ``opens_before_fork`` (Tesseract)
with its default options, and a worker forked from it takes that engine over when the
job's options allow, instead of loading the model again (pipeline.open_before_fork)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocrbatch import pipeline
from ocrbatch.model import PageTask
from ocrbatch.workerspec import WorkerSpec

pytest.importorskip("tesserocr")

PAGE = Path(__file__).resolve().parents[2] / "samples" / "phototest.tif"


@pytest.fixture
def forked() -> Iterator[object]:
    """As in a worker just forked from the server: the engine open, no spec yet."""
    pipeline.open_before_fork("tesseract")
    assert pipeline._forked_engine is not None
    engine = pipeline._forked_engine[1]
    yield engine
    pipeline.close_worker()
    if pipeline._forked_engine is not None:
        pipeline._forked_engine[1].close()
        pipeline._forked_engine = None


def _read(spec: WorkerSpec) -> str:
    pipeline.init_worker(spec, ignore_sigint=False)
    task = PageTask(task_id=1, job_id=1, document_id=1, path=str(PAGE), page_index=0, attempt=1)
    outcome = pipeline.process_page(task)
    assert outcome.ok, outcome.error
    return str(outcome.page["text"])


def test_the_worker_takes_over_the_open_engine(forked: object) -> None:
    text = _read(WorkerSpec(engine="tesseract", engine_options={"model": "fast"}, timeout=7))
    assert pipeline._engine is forked  # taken over, not built again
    assert pipeline._forked_engine is None  # and only once
    assert forked.timeout == 7  # the job's page timeout, not the server's default
    assert "quick brown dog" in text


def test_other_options_build_their_own_engine(forked: object) -> None:
    text = _read(WorkerSpec(engine="tesseract", engine_options={"psm": 6}))
    assert pipeline._engine is not forked
    assert pipeline._engine.options.psm == 6
    assert "quick brown dog" in text


def test_an_engine_that_does_not_declare_it_is_not_opened() -> None:
    pipeline.open_before_fork("fake")  # ocrbatch.testing's FakeEngine: the default, False
    assert pipeline._forked_engine is None
    pipeline.open_before_fork("no-such-engine")  # never raises: the command reports it
    assert pipeline._forked_engine is None
