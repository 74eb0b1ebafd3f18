"""The batch executor with the fake batch engine: batching, bounds, faults.

Real processes (forkserver preparation pool, a device process), no models: the
``fake-batch`` engine scripts crashes and hangs by file name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ocrbatch.executors.batched import BatchedExecutor
from ocrbatch.model import PageOutcome, PageTask
from ocrbatch.pipeline import WorkerSpec


@pytest.fixture
def pages(tmp_path: Path) -> list[Path]:
    out = []
    for name in ("a", "b", "c", "d", "e", "crash", "hang"):
        p = tmp_path / f"{name}.png"
        Image.new("L", (40, 20), 255).save(p)
        out.append(p)
    return out


def _run(ex: BatchedExecutor, tasks: list[PageTask], limit: float = 60) -> dict[int, PageOutcome]:
    import time

    for t in tasks:
        ex.submit(t)
    got: dict[int, PageOutcome] = {}
    deadline = time.monotonic() + limit
    while ex.in_flight() and time.monotonic() < deadline:
        for o in ex.collect(0.5):
            got[o.task_id] = o
    return got


def _task(i: int, path: Path, attempt: int = 1) -> PageTask:
    return PageTask(i, 1, i, str(path), 0, attempt)


@pytest.fixture
def executor(request: pytest.FixtureRequest) -> Iterator[BatchedExecutor]:
    options, timeout = request.param
    ex = BatchedExecutor(2, ["cpu"], timeout=timeout, queue_batches=2)
    ex.start(WorkerSpec("fake-batch", options, timeout=timeout))
    yield ex
    ex.stop()


@pytest.mark.parametrize("executor", [({"batch": 4, "delay": 0.2}, 30)], indirect=True)
def test_pages_are_batched_and_queues_are_bounded(
    executor: BatchedExecutor, pages: list[Path], tmp_path: Path
) -> None:
    # 2 workers x 2 in preparation + 1 device x 4 pages x 2 batches waiting.
    assert executor.capacity() == 12
    tasks = [_task(i, pages[i % 5]) for i in range(10)]
    missing = _task(99, tmp_path / "missing.png")
    got = _run(executor, [*tasks, missing])
    assert sorted(got) == [*range(10), 99]
    assert not got[99].ok and got[99].error_kind == "input" and not got[99].retryable
    sizes = [int(o.info["batch"]) for o in got.values() if o.ok]
    assert len(sizes) == 10 and max(sizes) > 1 and max(sizes) <= 4
    for o in got.values():
        if o.ok:
            assert o.page is not None and f"(batch of {o.info['batch']})" in o.page["text"]
    assert executor.capacity() == 12 and executor.in_flight() == 0


@pytest.mark.parametrize("executor", [({"batch": 2, "crash_on": "crash"}, 30)], indirect=True)
def test_a_dead_device_worker_fails_its_pages_retryably_and_is_replaced(
    executor: BatchedExecutor, pages: list[Path]
) -> None:
    got = _run(executor, [_task(0, pages[5])])
    assert got[0].error_kind == "crash" and got[0].retryable
    assert "died" in (got[0].error_message or "")
    later = _run(executor, [_task(1, pages[0])])
    assert later[1].ok  # a new device process took over


@pytest.mark.parametrize("executor", [({"batch": 2, "hang_on": "hang"}, 3)], indirect=True)
def test_a_stuck_device_worker_times_out_and_is_replaced(
    executor: BatchedExecutor, pages: list[Path]
) -> None:
    got = _run(executor, [_task(0, pages[6])])
    assert got[0].error_kind == "timeout" and got[0].retryable
    assert _run(executor, [_task(1, pages[1])])[1].ok


@pytest.mark.parametrize("executor", [({"batch": 2, "delay": 5}, 60)], indirect=True)
def test_stop_returns_the_pages_in_flight(executor: BatchedExecutor, pages: list[Path]) -> None:
    for i in range(3):
        executor.submit(_task(i, pages[i]))
    assert sorted(executor.stop()) == [0, 1, 2]
    assert executor.in_flight() == 0


def test_several_devices_each_get_their_own_worker(pages: list[Path]) -> None:
    # Two "devices" (both the CPU here; cuda:0 and cuda:1 on a GPU machine).
    ex = BatchedExecutor(2, ["cpu", "cpu"], timeout=30)
    ex.start(WorkerSpec("fake-batch", {"batch": 2, "delay": 0.3}, timeout=30))
    try:
        got = _run(ex, [_task(i, pages[i % 5]) for i in range(8)])
    finally:
        ex.close()
    assert all(o.ok for o in got.values()) and len(got) == 8
    assert len({o.worker_id for o in got.values()}) == 2


def test_pdf_pages_text_layer_skips_the_device_scans_are_rendered(tmp_path: Path) -> None:
    from tests.badfiles import image_pdf, text_pdf

    born = text_pdf(tmp_path / "born.pdf", ["Hello layer", "Second page"])
    scan = image_pdf(tmp_path / "scan.pdf", [Image.new("L", (300, 200), 255)])
    ex = BatchedExecutor(1, ["cpu"], timeout=30)
    ex.start(WorkerSpec("fake-batch", {"batch": 2}, timeout=30, preprocess="off"))
    try:
        tasks = [
            PageTask(0, 1, 0, str(born), 0, 1),
            PageTask(1, 1, 0, str(born), 1, 1),
            PageTask(2, 1, 1, str(scan), 0, 1),
        ]
        got = _run(ex, tasks)
    finally:
        ex.close()
    assert all(o.ok for o in got.values())
    assert got[0].info["path"] == "text-layer" and "batch" not in got[0].info
    assert got[0].page is not None and "Hello layer" in got[0].page["text"]
    assert got[2].info["path"] == "ocr" and got[2].info["source"] == "pdf"
    assert got[2].page is not None and "(batch of 1)" in got[2].page["text"]
