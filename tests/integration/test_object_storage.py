"""Documents in a bucket: a real S3 API on 127.0.0.1 (moto's server, started per test by
the ``s3`` fixture) reached through the real client code path (s3fs/botocore with
``--storage-option endpoint_url=...`` and credentials from the environment)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ocrbatch import intake
from ocrbatch.config import RunConfig
from ocrbatch.intake import create_job, ingest
from ocrbatch.store import Store
from tests.badfiles import image_pdf, text_pdf
from tests.conftest import DATA, S3Server, wait_until

pytestmark = pytest.mark.slow

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _caches(tmp_path: Path) -> dict[str, str]:
    """Caches of this test's own (the default ones are shared by every run)."""
    return {
        "OCRBATCH_CACHE": str(tmp_path / "page-cache"),
        "OCRBATCH_OBJECT_CACHE": str(tmp_path / "object-cache"),
    }


def _documents(folder: Path) -> Path:
    """Pages of tests/data as images, a scanned PDF, a born-digital PDF and a two-frame
    TIFF, one of them in a subfolder."""
    folder.mkdir()
    tiffs = sorted((DATA / "tesseract_test").glob("*.tif"))
    for t in tiffs:
        shutil.copy(t, folder / t.name)
    (folder / "sub").mkdir()
    shutil.copy(DATA / "docbank" / "arxiv_1401_6921_p13.jpg", folder / "sub" / "paper.jpg")
    # Plain copies of the pages (not carrying their files' group 4 settings).
    grey = [Image.open(t).convert("L") for t in tiffs]
    frames = [Image.frombytes("L", g.size, g.tobytes()) for g in grey]
    # (each save on copies: Pillow leaves its settings on the images it appended)
    image_pdf(folder / "scanned.pdf", [f.copy() for f in frames], dpi=300)
    first, *rest = (f.copy() for f in frames)
    first.save(folder / "frames.tiff", save_all=True, append_images=rest)
    text_pdf(folder / "born-digital.pdf", ["Born digital text, page one.", "And page two."])
    return folder


def _records(text: str) -> dict[str, dict[str, Any]]:
    return {r["rel_path"]: r for r in map(json.loads, text.splitlines())}


def _same(rec: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between a job on local files and one on the bucket."""
    return {
        "status": rec["status"],
        "pages": rec["pages"],
        "text": rec["text"],
        "confidence": rec["confidence"],
        "page_results": [(p["page"], p["status"], p["text"]) for p in rec["page_results"]],
        "outputs": rec["outputs"],
    }


def test_a_job_from_a_bucket_prefix_to_an_output_prefix_equals_the_job_on_local_files(
    s3: S3Server, cli: Cli, tmp_path: Path
) -> None:
    src = _documents(tmp_path / "scans")
    s3.bucket("scans")
    s3.bucket("ocr")
    s3.put_tree(src, "s3://scans/2026")
    env = _caches(tmp_path)
    fmt = ["--format", "jsonl,txt,pdf", "-j", "2"]
    local = cli("run", str(src), "--out", str(tmp_path / "local"), *fmt, env=env)
    assert local.returncode == 0, local.stderr
    shutil.rmtree(tmp_path / "page-cache")  # the bucket's job reads its pages afresh
    remote = cli("run", "s3://scans/2026/", "--out", "s3://ocr/2026/", *s3.options, *fmt, env=env)
    assert remote.returncode == 0, remote.stderr
    assert "s3://ocr/2026" in remote.stdout

    fs = s3.fs()
    want = _records((tmp_path / "local" / "results.jsonl").read_text())
    got = _records(fs.cat("ocr/2026/results.jsonl").decode())
    assert (
        set(got)
        == set(want)
        == {
            "eurotext.tif",
            "phototest.tif",
            "sub/paper.jpg",
            "scanned.pdf",
            "frames.tiff",
            "born-digital.pdf",
        }
    )
    for rel, rec in want.items():
        assert _same(got[rel]) == _same(rec), rel
        assert got[rel]["path"] == f"s3://scans/2026/{rel}"
    assert got["frames.tiff"]["pages"] == got["scanned.pdf"]["pages"] == 2  # a task per page
    assert "Born digital" in got["born-digital.pdf"]["text"]  # from the text layer
    # Every output is a whole object under the prefix; no temp file, nothing left local.
    keys = {k.removeprefix("ocr/2026/") for k in fs.find("ocr/2026")}
    local_files = {
        p.relative_to(tmp_path / "local").as_posix()
        for p in (tmp_path / "local").rglob("*")
        if p.is_file()
    }
    assert keys == local_files
    for rel in want:
        assert (
            fs.cat(f"ocr/2026/text/{rel}.txt")
            == (tmp_path / "local" / "text" / f"{rel}.txt").read_bytes()
        )
    assert fs.cat("ocr/2026/pdf/scanned.pdf.pdf").startswith(b"%PDF")
    summary = json.loads(fs.cat("ocr/2026/summary.json"))
    assert summary["documents"]["completed"] == 6 and not summary.get("partial")
    # The workers fetched each document into their object cache.
    cached = {p.name for p in (tmp_path / "object-cache").rglob("*") if p.is_file()}
    assert {"eurotext.tif", "paper.jpg", "scanned.pdf", "frames.tiff"} <= cached


def test_kill_9_then_resume_with_bucket_inputs_records_every_document_once(
    s3: S3Server, tmp_path: Path
) -> None:
    pages = 14
    src = tmp_path / "scans"
    src.mkdir()
    for i in range(pages):  # a dense page: the job still runs when it is killed
        shutil.copy(DATA / "docbank" / "arxiv_1401_6921_p13.jpg", src / f"page {i:02d}.jpg")
    s3.bucket("scans")
    s3.put_tree(src, "s3://scans/k9")
    db, out = f"sqlite:///{tmp_path / 'j.db'}", tmp_path / "out"
    env = {**os.environ, **_caches(tmp_path)}
    args = [sys.executable, "-m", "ocrbatch", "--progress", "log"]
    run = [*args, "run", "s3://scans/k9/", *s3.options, "--out", str(out), "--name", "k9"]
    proc = subprocess.Popen(
        [*run, "-j", "2", "--db", db],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def done() -> int:
            with contextlib.suppress(Exception), Store(db) as st:
                return st.get_job("k9").processed_pages
            return 0

        wait_until(lambda: done() >= 3, 180, "three pages done")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with Store(db) as st:
        job = st.get_job("k9")
        before = {
            p["id"]: p["completed_at"]
            for d in st.iter_documents(job.id)
            for p in d["pages"]
            if p["status"] == "completed"
        }
    assert 3 <= len(before) < pages
    resumed = subprocess.run(
        [*args, "resume", "k9", "--db", db],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["path"] for r in recs) == [
        f"s3://scans/k9/page {i:02d}.jpg" for i in range(pages)
    ]
    assert all(r["status"] == "completed" and len(r["text"]) > 1000 for r in recs)
    with Store(db) as st:
        job = st.get_job("k9")
        after = {p["id"]: p["completed_at"] for d in st.iter_documents(job.id) for p in d["pages"]}
    assert (job.status, job.total_documents, job.successful_documents) == ("completed", 14, 14)
    assert {k: after[k] for k in before} == before  # finished pages were not redone


def test_a_prefix_of_10000_objects_is_listed_with_the_coordinators_memory_flat(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.bucket("many")
    fs = s3.fs()
    for start in range(0, 10_000, 1000):
        fs.pipe({f"many/big/{i:05d}.png": b"%d" % i for i in range(start, start + 1000)})
    fs.pipe({f"many/small/{i:05d}.png": b"%d" % i for i in range(1000)})
    cfg = RunConfig(engine="fake", storage_options={"endpoint_url": s3.endpoint})
    with Store(f"sqlite:///{tmp_path / 'j.db'}") as st:
        # First uses cost once (botocore's S3 model, about 12 MB; compiled statements).
        for k in range(2):
            warm = create_job(st, ["s3://many/small/"], tmp_path / f"warm{k}", cfg)
            ingest(st, st.get_job(warm.id))
        job = create_job(st, ["s3://many/big/"], tmp_path / "out", cfg)
        # The coordinator's traced memory after each batch it stored (500 documents).
        after: list[int] = []
        discover = intake.discover

        def sampled(*args: Any, **kwargs: Any) -> Any:
            for batch in discover(*args, **kwargs):
                yield batch
                after.append(tracemalloc.get_traced_memory()[0])

        monkeypatch.setattr(intake, "discover", sampled)
        tracemalloc.start()
        try:
            n = ingest(st, st.get_job(job.id))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        job = st.get_job(job.id)
    assert n == job.total_documents == 10_000 and job.discovery_done
    assert len(after) == 20
    # Flat: after 2,000 objects, 8,000 more add less than a megabyte (measured: 1.9 to
    # 2.4 MB all along, a peak of 4.4 MB); a page of keys and a batch at a time.
    assert max(after[4:]) < after[3] + 2**20, after
    assert peak < 8 * 2**20, peak


def test_throttling_is_retried_and_never_counted_as_a_page_failure(
    s3: S3Server, cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "scans"
    src.mkdir()
    for t in sorted((DATA / "tesseract_test").glob("*.tif")):
        for i in range(3):
            shutil.copy(t, src / f"{t.stem}-{i}.tif")
    s3.bucket("scans")
    s3.put_tree(src, "s3://scans/busy")
    # The first two requests for each object (discovery's range reads, the workers'
    # HEAD and GET) are answered 503 SlowDown, as S3 does when a prefix is hot.
    s3.faults(slowdown=2, match="/scans/busy/")
    out = tmp_path / "out"
    r = cli(
        "run", "s3://scans/busy/", *s3.options, "--out", str(out), "--engine", "fake",
        "-j", "2", env=_caches(tmp_path),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert s3.faults()["injected"] == 2 * 6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["documents"]["completed"] == 6
    assert summary["pages"]["failed"] == 0 and summary["retries"] == 0
    assert (out / "errors.jsonl").read_text() == ""


def test_wrong_credentials_fail_in_one_line_naming_the_bucket(
    s3: S3Server, cli: Cli, tmp_path: Path
) -> None:
    s3.bucket("scans")
    s3.fs().pipe({"scans/x/a.png": (DATA / "tesseract_test" / "phototest.tif").read_bytes()})
    wrong = {"AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG", **_caches(tmp_path)}
    r = cli("run", "s3://scans/x/", *s3.options, "--out", str(tmp_path / "out"), env=wrong)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "bucket scans" in lines[0] and "access denied" in lines[0], lines[0]
    assert "Traceback" not in r.stderr
    # An output prefix the credentials cannot write: exit 3, the same one line.
    local = tmp_path / "in"
    local.mkdir()
    shutil.copy(DATA / "tesseract_test" / "phototest.tif", local)
    r = cli("run", str(local), *s3.options, "--out", "s3://scans/out/", env=wrong)
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "bucket scans" in r.stderr


def test_watch_a_bucket_prefix_takes_each_new_object_once_and_moves_it_when_done(
    s3: S3Server, tmp_path: Path
) -> None:
    s3.bucket("scans")
    fs = s3.fs()
    page = (DATA / "tesseract_test" / "phototest.tif").read_bytes()
    fs.pipe({"scans/inbox/first.tif": page})
    db, out = f"sqlite:///{tmp_path / 'j.db'}", tmp_path / "ocr"
    args = ["watch", "s3://scans/inbox/", *s3.options, "--out", str(out), "--settle", "0.3"]
    args += ["--done-prefix", "s3://scans/done/", "--engine", "fake", "-j", "2", "--db", db]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocrbatch", "--progress", "log", *args],
        env={**os.environ, **_caches(tmp_path)},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:

        def moved(n: int) -> bool:
            assert proc.poll() is None, proc.communicate()
            # s3fs keeps listings in its cache (find's refresh=True does not reach them):
            # a listing taken before the move would be read again for ever.
            fs.invalidate_cache()
            return len(fs.find("scans/done")) == n and not fs.find("scans/inbox")

        try:
            wait_until(lambda: moved(1), 120, "the first object done and moved")
            # Each object arrives whole (a PUT): one of them under a "folder".
            fs.pipe({f"scans/inbox/{n}.tif": page + n.encode() for n in ("a", "b", "sub/c")})
            wait_until(lambda: moved(4), 120, "four objects done and moved")
        except AssertionError as exc:  # say what the watcher was doing
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
            fs.invalidate_cache()
            listing = sorted(fs.find("scans"))
            raise AssertionError(
                f"{exc}; bucket: {listing}; watcher's log:\n{err[-6000:]}"
            ) from None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()  # closes the pipes too
    recs = _records((out / "results.jsonl").read_text())
    assert sorted(recs) == ["a.tif", "b.tif", "first.tif", "sub/c.tif"]
    assert all(r["status"] == "completed" for r in recs.values())
    fs.invalidate_cache()
    assert sorted(k.removeprefix("scans/done/") for k in fs.find("scans/done")) == sorted(recs)


def test_an_object_changed_after_discovery_fails_with_its_reason_never_with_other_text(
    s3: S3Server, cli: Cli, tmp_path: Path
) -> None:
    s3.bucket("scans")
    fs = s3.fs()
    page = (DATA / "tesseract_test" / "phototest.tif").read_bytes()
    fs.pipe({"scans/c/same.tif": page, "scans/c/changed.tif": page + b"1"})
    out, env = tmp_path / "out", _caches(tmp_path)
    sub = cli(
        "submit", "s3://scans/c/", *s3.options, "--out", str(out), "--engine", "fake", env=env
    )
    assert sub.returncode == 0, sub.stderr
    fs.pipe({"scans/c/changed.tif": page + b"2"})  # overwritten after discovery
    r = cli("resume", "1", "--here", env=env)
    assert r.returncode == 8, r.stderr  # done, one document failed
    recs = _records((out / "results.jsonl").read_text())
    assert recs["same.tif"]["status"] == "completed"
    assert recs["changed.tif"]["status"] == "failed"
    assert "changed since discovery" in recs["changed.tif"]["error"]
