"""Distributed mode on a real local Ray cluster: a head node and a second worker node.

One cluster per module (starting Ray takes seconds); each test adds the nodes it needs.
The fake engine with delays drives the cluster logic; one test runs real Tesseract.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ocrbatch
from ocrbatch.model import PageTask
from ocrbatch.pipeline import WorkerSpec
from tests.badfiles import good_png
from tests.conftest import DATA, S3Server

ray = pytest.importorskip("ray")

_NODE = {"num_cpus": 2, "object_store_memory": 80 * 2**20}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={**_NODE, "include_dashboard": False},
    )
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    yield c
    ray.shutdown()
    c.shutdown()


def _inputs(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        good_png(folder / n, text=n)
    return folder


def _config(**fake: Any) -> dict[str, Any]:
    return {
        "engine": "fake",
        "engine_options": fake,
        "mode": "distributed",
        "timeout": 20,
        "max_retries": 1,
        "retry_backoff": 0.0,
        "preprocess": "off",
    }


def _results(out: Path) -> dict[str, dict[str, Any]]:
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(recs) == len({r["path"] for r in recs}), "a document appears twice"
    return {Path(r["path"]).name: r for r in recs}


def _node_of(rec: dict[str, Any]) -> str:
    return str(rec["page_results"][0]["worker"]).rpartition("@")[2]


def _wait_cpus(n: float) -> None:
    deadline = time.monotonic() + 120
    while ray.available_resources().get("CPU", 0) < n:
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.2)


def test_a_job_completes_on_two_nodes_and_a_lost_node_loses_no_page(
    cluster: Any, tmp_path: Path, db_url: str
) -> None:
    second = cluster.add_node(**_NODE)
    _wait_cpus(4)
    names = [f"p{i:02}.png" for i in range(40)]
    src = _inputs(tmp_path / "in", names)
    job = ocrbatch.submit([src], tmp_path / "out", db=db_url, config=_config(delay=0.25))

    def remove_second_node_mid_job() -> None:
        deadline = time.monotonic() + 120
        while ocrbatch.job_status(job, db=db_url)["pages_done"] < 8:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cluster.remove_node(second, allow_graceful=False)

    killer = threading.Thread(target=remove_second_node_mid_job)
    killer.start()
    summary = ocrbatch.resume(job, db=db_url)
    killer.join()
    assert summary["status"] == "completed" and summary["workers"] == 4
    assert summary["pages"]["completed"] == 40 and summary["pages"]["failed"] == 0
    assert summary["retries"] == 0  # pages of the lost node were re-sent, not charged
    res = _results(tmp_path / "out")
    assert sorted(res) == names  # every page once, none lost
    nodes = {_node_of(r) for r in res.values()}
    assert second.node_id[:8] in nodes and len(nodes) == 2  # the lost node did work


def test_timeouts_and_crashes_replace_the_actor_and_the_rest_completes(
    cluster: Any, tmp_path: Path, db_url: str
) -> None:
    src = _inputs(tmp_path / "in", [f"ok{i}.png" for i in range(6)] + ["hang.png", "crash.png"])
    summary = ocrbatch.run(
        [src],
        tmp_path / "out",
        db=db_url,
        config={**_config(hang_on="hang", crash_on="crash"), "timeout": 2.0, "workers": 2},
    )
    res = _results(tmp_path / "out")
    assert summary["documents"]["completed"] == 6 and summary["documents"]["failed"] == 2
    assert res["hang.png"]["error"] == "timed out after 2s; the worker was killed and replaced"
    assert res["crash.png"]["error"].startswith("worker process died")
    assert res["crash.png"]["page_results"][0]["retries"] == 1


def test_real_tesseract_on_the_cluster(cluster: Any, tmp_path: Path, db_url: str) -> None:
    from ocrbatch.accuracy import score

    page = DATA / "tesseract_test" / "phototest.tif"
    summary = ocrbatch.run(
        [page], tmp_path / "out", db=db_url, config={"mode": "distributed", "workers": 1}
    )
    assert summary["status"] == "completed"
    text = _results(tmp_path / "out")["phototest.tif"]["text"]
    gt = page.with_suffix(".gt.txt").read_text().replace("~", "")
    assert score(text, gt).cer < 0.10  # the bound the local-pool corpus test uses


@pytest.mark.parametrize("ship", ["always", "never"])
def test_page_bytes_travel_when_workers_cannot_see_the_files(
    cluster: Any, tmp_path: Path, ship: str
) -> None:
    """ship_pages=always: the coordinator reads the file and ships its bytes, so the page
    is done even though the file is gone before the worker could read it."""
    from ocrbatch.executors.ray import RayExecutor

    f = good_png(tmp_path / "page.png", text="x")
    ex = RayExecutor(1, timeout=20, ship_pages=ship)
    ex.start(WorkerSpec(engine="fake"))
    try:
        task = PageTask(task_id=1, job_id=1, document_id=1, path=str(f), page_index=0, attempt=1)
        if ship == "never":
            f.unlink()
        ex.submit(task)
        if ship == "always":
            f.unlink()
        outcomes: list[Any] = []
        deadline = time.monotonic() + 60
        while not outcomes:
            assert time.monotonic() < deadline
            outcomes = ex.collect(1.0)
    finally:
        ex.close()
    (o,) = outcomes
    if ship == "always":
        assert o.ok and o.page["text"] == "fake text of page.png page 1"
    else:
        assert not o.ok and o.error_message.startswith("file not found")


def test_auto_ships_only_to_nodes_that_do_not_see_the_file(cluster: Any, tmp_path: Path) -> None:
    from ocrbatch.executors.ray import RayExecutor

    f = good_png(tmp_path / "page.png", text="x")
    ex = RayExecutor(1, timeout=20)
    ex.start(WorkerSpec(engine="fake"))
    try:
        (slot,) = [s for s in ex._slots if s.ready_ref is None]
        task = PageTask(task_id=1, job_id=1, document_id=1, path=str(f), page_index=0, attempt=1)
        assert ex._data_for(slot, task) is None  # same machine: the node sees the file
        # Another size and mtime at the same path: another machine's file, not ours.
        assert ray.get(slot.actor.sees.remote(str(f), 1, 1)) is False
        ex._shared[slot.node_id] = False  # what the probe says of such a node
        ref = ex._data_for(slot, task)
        assert ray.get(ref) == f.read_bytes()
    finally:
        ex.close()


def test_shipped_pdf_pages_render_from_the_actors_copy(
    cluster: Any, tmp_path: Path, db_url: str
) -> None:
    from PIL import Image, ImageDraw

    from tests.badfiles import image_pdf

    pages = []
    for i in range(3):
        im = Image.new("L", (600, 300), 255)
        ImageDraw.Draw(im).text((20, 100), f"page {i + 1}", fill=0)
        pages.append(im)
    pdf = image_pdf(tmp_path / "scan.pdf", pages)
    summary = ocrbatch.run(
        [pdf],
        tmp_path / "out",
        db=db_url,
        config={**_config(), "ship_pages": "always", "workers": 2},
    )
    assert summary["pages"]["completed"] == 3
    rec = _results(tmp_path / "out")["scan.pdf"]
    assert [p["text"] for p in rec["page_results"]] == [
        f"fake text of scan.pdf page {i}" for i in (1, 2, 3)
    ]


def test_nodes_read_bucket_documents_themselves_never_shipped(
    cluster: Any, tmp_path: Path, db_url: str, s3: S3Server
) -> None:
    """Even with ship_pages=always (every local file shipped), a document in a bucket
    goes to the actors as its URL: each node fetches it from the bucket."""
    from ocrbatch.executors.ray import RayExecutor

    s3.bucket("scans")
    _inputs(tmp_path / "src", ["a.png", "b.png", "c.png"])
    s3.put_tree(tmp_path / "src", "s3://scans/ray")
    # The actors were started before this test's environment: credentials go explicitly.
    options = {"endpoint_url": s3.endpoint, "key": S3Server.ACCESS_KEY, "secret": "testing-secret"}
    ex = RayExecutor(1, timeout=20, ship_pages="always")
    ex.start(WorkerSpec(engine="fake"))
    try:
        (slot,) = [s for s in ex._slots if s.ready_ref is None]
        url = "s3://scans/ray/a.png"
        task = PageTask(task_id=1, job_id=1, document_id=1, path=url, page_index=0, attempt=1)
        assert ex._data_for(slot, task) is None
    finally:
        ex.close()
    summary = ocrbatch.run(
        ["s3://scans/ray/"],
        tmp_path / "out",
        db=db_url,
        config={**_config(), "ship_pages": "always", "storage_options": options},
    )
    assert summary["documents"]["completed"] == 3, summary
    recs = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["text"] for r in recs) == [f"fake text of {n}.png page 1" for n in "abc"]
    assert all("@" in r["page_results"][0]["worker"] for r in recs)  # read by Ray actors
