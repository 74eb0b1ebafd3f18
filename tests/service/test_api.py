"""The REST service over HTTP: a real uvicorn server on 127.0.0.1 with its embedded
queue worker (real worker processes), driven as a client would."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATA, holds_for, wait_until
from tests.service.server import Service, fake_job, service, start_service, stop_service

__all__ = ["service"]


def _sse_progress(svc: Service, job: int, events: int) -> list[dict[str, object]]:
    """The first ``events`` progress events of the job's stream."""
    seen: list[dict[str, object]] = []
    with svc.api.stream("GET", f"/api/v1/jobs/{job}/events", timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in ("progress", "end"):
                seen.append(json.loads(line[6:]))
                if len(seen) >= events or event == "end":
                    break
    return seen


def _still(svc: Service, job: int, seconds: float) -> bool:
    before = svc.status(job)["pages_done"]
    time.sleep(seconds)
    return bool(svc.status(job)["pages_done"] == before)


def test_submit_watch_pause_resume_and_fetch_every_result(service: Service) -> None:
    svc = service
    folder = svc.pages("scans", 40)
    job = fake_job(svc, folder, engine_options={"delay": 0.25}, format="jsonl,pdf")["job"]

    # Progress moves, seen by polling and by server-sent events.
    wait_until(lambda: svc.status(job)["pages_done"] >= 2, 90, "first pages done")
    events = _sse_progress(svc, job, 3)
    done = [e["pages_done"] for e in events]
    assert done == sorted(done) and done[-1] > done[0], events
    assert svc.status(job)["pages_per_s"] is not None

    # Pause: nothing moves any more; resume: it completes.
    r = svc.api.post(f"/api/v1/jobs/{job}/pause")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paused"
    # Pages finished in the second before the worker saw the pause are still recorded.
    wait_until(lambda: _still(svc, job, 1.2), 20, "its worker letting go")
    frozen = svc.status(job)["pages_done"]
    assert frozen < 40
    holds_for(lambda: svc.status(job)["pages_done"] == frozen, 2.0, "a paused job standing still")
    assert svc.api.post(f"/api/v1/jobs/{job}/resume").json()["status"] in ("pending", "running")
    final = svc.wait_status(job, ("completed",))
    assert final["pages_done"] == 40
    # Its files are written by the worker that finished it, right after.
    wait_until(lambda: svc.status(job)["outputs"] == "complete", 30, "the job's files")

    # Results: results.jsonl streamed, documents paged, one document in every format.
    lines = svc.api.get(f"/api/v1/jobs/{job}/results.jsonl").text.splitlines()
    assert len(lines) == 40 and all(json.loads(x)["status"] == "completed" for x in lines)
    page1 = svc.api.get(f"/api/v1/jobs/{job}/documents", params={"limit": 15}).json()
    page2 = svc.api.get(
        f"/api/v1/jobs/{job}/documents", params={"limit": 15, "after": page1["next_after"]}
    ).json()
    assert len(page1["documents"]) == 15 and page2["documents"][0]["id"] > page1["next_after"]
    doc = page1["documents"][0]["id"]
    base = f"/api/v1/jobs/{job}/documents/{doc}"
    assert "fake text of p000.png" in svc.api.get(f"{base}/text").text
    boxes = svc.api.get(f"{base}/json").json()["page_results"][0]["blocks"]
    assert boxes[0]["lines"][0]["words"][0]["box"]
    assert "ocr_page" in svc.api.get(f"{base}/hocr").text
    assert "<alto" in svc.api.get(f"{base}/alto").text
    pdf = svc.api.get(f"{base}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    png = svc.api.get(f"{base}/pages/1/image")
    assert png.content.startswith(b"\x89PNG")
    assert svc.api.get(f"/api/v1/jobs/{job}/errors").json()["errors"] == []
    series = svc.api.get(f"/api/v1/jobs/{job}/throughput").json()["series"]
    assert sum(p["pages_per_s"] for p in series) > 0
    listed = svc.api.get("/api/v1/jobs", params={"status": "completed"}).json()["jobs"]
    assert [j["job"] for j in listed] == [job]

    # Metrics count the pages the embedded worker (another process) did.
    metrics = httpx.get(f"{svc.url}/metrics").text
    assert 'ocrbatch_pages_done_total{engine="fake"} 40.0' in metrics
    assert "ocrbatch_page_latency_seconds_bucket" in metrics
    assert 'ocrbatch_workers{state="idle"}' in metrics


def test_failures_and_errors_read_as_the_cli_writes_them(service: Service) -> None:
    svc = service
    folder = svc.pages("mixed", 4)
    job = fake_job(svc, folder, engine_options={"bad_on": "p001"})["job"]
    final = svc.wait_status(job, ("completed",))
    assert final["documents_failed"] == 1
    errors = svc.api.get(f"/api/v1/jobs/{job}/errors").json()
    assert errors["errors"][0]["error"] == "fake: unreadable document"
    assert errors["by_reason"] == [
        {"kind": "input", "error": "fake: unreadable document", "pages": 1}
    ]
    # The same one-line reasons as the CLI, as JSON, a status per error class.
    bad = svc.api.post("/api/v1/jobs", json={"inputs": [str(folder)], "options": {"timeout": -1}})
    assert bad.status_code == 422
    assert bad.json() == {"error": "--timeout: Input should be greater than 0 (given: -1)"}
    unknown = svc.api.post("/api/v1/jobs", json={"inputs": [str(folder)], "options": {"nope": 1}})
    assert unknown.status_code == 422 and "unknown option 'nope'" in unknown.json()["error"]
    missing = svc.api.get("/api/v1/jobs/999")
    assert missing.status_code == 404 and missing.json()["error"].startswith("no job '999'")
    again = svc.api.post(f"/api/v1/jobs/{job}/pause")
    assert again.status_code == 409
    assert again.json() == {"error": f"job {job} is completed; it cannot become paused"}
    retried = svc.api.post(f"/api/v1/jobs/{job}/retry-failed")
    assert retried.status_code == 200, retried.text
    svc.wait_status(job, ("completed",))


def test_every_route_needs_a_token_and_every_change_a_write_token(service: Service) -> None:
    svc = service
    schema = svc.api.get("/openapi.json").json()
    anonymous, reader = svc.client(), svc.client(svc.read)
    changes = 0
    for path, ops in schema["paths"].items():
        url = path.replace("{job}", "1").replace("{doc}", "1").replace("{page}", "1")
        for method in ops:
            if path in ("/healthz", "/metrics"):
                assert anonymous.request(method, url).status_code == 200
                continue
            r = anonymous.request(method, url)
            assert r.status_code == 401, (method, path, r.text)
            assert "needs a token" in r.json()["error"]
            assert r.headers["www-authenticate"] == "Bearer"
            if method != "get":
                changes += 1
                r = reader.request(method, url, json={"inputs": ["x"]})
                assert r.status_code == 403, (method, path, r.text)
                assert r.json()["error"] == "token 'reader' has scope read; this needs write"
    assert changes >= 6  # create, pause, resume, cancel, retry-failed, upload
    bogus = svc.client("ocb_not-a-token").get("/api/v1/jobs")
    assert bogus.status_code == 401 and bogus.json() == {"error": "unknown or revoked token"}
    assert reader.get("/api/v1/jobs").status_code == 200


def test_paths_outside_the_allowed_roots_are_refused_before_anything_is_read(
    service: Service, tmp_path: Path
) -> None:
    svc = service
    outside = tmp_path / "outside"
    outside.mkdir()
    # A FIFO: anything that opened it to read would hang this request.
    os.mkfifo(outside / "trap.png")
    (svc.root / "escape").symlink_to(outside)
    inside = svc.pages("ok", 1)
    cases = {
        f"{svc.root}/ok/../../outside": "'..' is not allowed",
        "../outside": "'..' is not allowed",
        str(outside): "is outside the allowed roots",
        "/etc/passwd": "is outside the allowed roots",
        str(svc.root / "escape"): "resolves (through a symlink) outside",
        str(svc.root / "escape" / "trap.png"): "resolves (through a symlink) outside",
        f"{svc.root}/escape/*.png": "resolves (through a symlink) outside",
        "s3://bucket/x.png": "only local paths",
    }
    for raw, why in cases.items():
        r = svc.api.post("/api/v1/jobs", json={"inputs": [raw]}, timeout=10)
        assert r.status_code == 403, (raw, r.text)
        assert why in r.json()["error"], (raw, r.json())
    for body in (
        {"inputs": [str(inside)], "out": str(outside / "out")},
        {"inputs": [str(inside)], "out": str(svc.root / "escape" / "out")},
        {"inputs": [str(inside)], "options": {"ground_truth": str(outside)}},
    ):
        r = svc.api.post("/api/v1/jobs", json=body, timeout=10)
        assert r.status_code == 403, (body, r.text)
    assert not (outside / "out").exists()
    assert svc.api.get("/api/v1/jobs").json()["jobs"] == []  # no job was created


def test_uploads_land_in_the_inbox_and_bodies_are_capped(tmp_path: Path) -> None:
    svc = start_service(tmp_path, "--max-upload-mb", "1")
    try:
        pages = svc.pages("up", 2)
        files = [("files", (p.name, p.read_bytes(), "image/png")) for p in sorted(pages.iterdir())]
        files.append(("files", ("../../evil name.png", files[0][1][1], "image/png")))
        r = svc.api.post("/api/v1/uploads", files=files)
        assert r.status_code == 201, r.text
        up = r.json()
        assert Path(up["path"]).parent == svc.state / "inbox"
        assert up["files"] == ["p000.png", "p001.png", "evil name.png"]
        job = svc.api.post(
            "/api/v1/jobs", json={"inputs": [up["path"]], "options": {"engine": "fake"}}
        )
        assert job.status_code == 201, job.text
        assert svc.wait_status(job.json()["job"], ("completed",))["documents_done"] == 3
        big = [("files", ("big.png", b"\0" * (2 << 20), "image/png"))]
        r = svc.api.post("/api/v1/uploads", files=big)
        assert r.status_code == 413 and "over the limit" in r.json()["error"]
        r = svc.api.post("/api/v1/jobs", content=b'{"inputs": ["' + b"a" * (2 << 20) + b'"]}')
        assert r.status_code == 413
        notimage = [("files", ("run.sh", b"#!/bin/sh", "text/plain"))]
        assert svc.api.post("/api/v1/uploads", files=notimage).status_code == 422
    finally:
        stop_service(svc)


def test_a_real_tesseract_job_with_a_searchable_pdf(service: Service) -> None:
    svc = service
    scans = svc.root / "tess"
    shutil.copytree(DATA / "tesseract_test", scans)
    body = {
        "inputs": [str(scans)],
        "out": str(svc.root / "tess-out"),
        "options": {"format": "jsonl,pdf", "min_confidence": 0.99},
    }
    r = svc.api.post("/api/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    svc.wait_status(job, ("completed",), timeout=240)
    wait_until(lambda: svc.status(job)["outputs"] == "complete", 60, "the job's files")
    final = svc.status(job)
    assert final["accuracy"]["documents"] == 2  # the .gt.txt files beside the pages
    docs = svc.api.get(f"/api/v1/jobs/{job}/documents").json()["documents"]
    photo = next(d for d in docs if d["rel_path"] == "phototest.tif")
    text = svc.api.get(f"/api/v1/jobs/{job}/documents/{photo['id']}/text").text
    assert "quick brown dog" in text
    pdf = svc.api.get(f"/api/v1/jobs/{job}/documents/{photo['id']}/pdf").content
    assert pdf.startswith(b"%PDF") and b"/Font" in pdf
    review = svc.api.get(f"/api/v1/jobs/{job}/review").json()
    assert review["min_confidence"] == 0.99 and review["pages"]


@pytest.mark.corpus
def test_a_real_tesseract_job_on_corpus_pages(service: Service, corpus: Path) -> None:
    svc = service
    pages = sorted((corpus / "oldbooks").rglob("*.png"))[:3] or sorted(corpus.rglob("*.jpg"))[:3]
    scans = svc.root / "corpus"
    scans.mkdir()
    for p in pages:
        shutil.copy(p, scans / p.name)
    r = svc.api.post(
        "/api/v1/jobs", json={"inputs": [str(scans)], "options": {"preprocess": "off"}}
    )
    assert r.status_code == 201, r.text
    final = svc.wait_status(r.json()["job"], ("completed",), timeout=280)
    assert final["pages_done"] == len(pages) and final["pages_failed"] == 0
