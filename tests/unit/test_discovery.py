"""Hostile inputs at discovery (issue 10): FIFOs, sockets and devices, inputs of the
same base name, unreadable folders, and the tool's own outputs inside an input root."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ocrbatch
from ocrbatch.discovery import DiscoveryOptions, check_inputs, discover, iter_paths
from ocrbatch.errors import ConfigError, DocumentError
from ocrbatch.intake import ingest
from ocrbatch.model import DocumentRef
from ocrbatch.service import make_config
from ocrbatch.store import Store
from ocrbatch.tools.images import load_image
from ocrbatch.tools.pdf import render_page
from tests.badfiles import good_png, text_pdf

LIMIT = 250_000_000
FAKE: dict[str, Any] = {"engine": "fake", "preprocess": "off", "mode": "sequential"}


def _docs(inputs: list[str], **opts: Any) -> list[DocumentRef]:
    return [d for batch in discover(inputs, options=DiscoveryOptions(**opts)) for d in batch]


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def unjam() -> Iterator[list[Path]]:
    """FIFOs to watch: a reader blocked on one is let go (a writer opens and closes it),
    so that code which still blocks fails its assertions instead of hanging the run."""
    fifos: list[Path] = []
    done = threading.Event()

    def loop() -> None:
        while not done.wait(1.0):
            for f in fifos:
                # ENXIO while no reader waits: nobody is stuck on it
                with contextlib.suppress(OSError):
                    os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield fifos
    done.set()
    t.join()


def _hostile_tree(root: Path, unjam: list[Path]) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    good_png(root / "good.png")
    files = {"fifo": root / "pipe.png", "fifo_pdf": root / "pipe.pdf"}
    for f in files.values():
        os.mkfifo(f)
        unjam.append(f)
    files["zero"] = root / "zero.png"
    files["zero"].symlink_to("/dev/zero")
    files["socket"] = root / "s.png"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(files["socket"]))  # the file stays after the socket is closed
    return files


@pytest.mark.timeout(60)
def test_fifo_socket_and_device_are_failed_documents_never_a_hang(
    tmp_path: Path, db_url: str, unjam: list[Path]
) -> None:
    files = _hostile_tree(tmp_path / "in", unjam)
    t0 = time.monotonic()
    docs = {Path(d.path).name: d for d in _docs([str(tmp_path / "in")])}
    assert time.monotonic() - t0 < 5
    assert docs["good.png"].error is None
    assert docs["pipe.png"].error == "not a regular file (FIFO)"
    assert docs["pipe.pdf"].error == "not a regular file (FIFO)"
    assert docs["zero.png"].error == "not a regular file (character device)"
    assert docs["s.png"].error == "not a regular file (socket)"

    out = tmp_path / "out"
    summary = ocrbatch.run([tmp_path / "in"], out, db=db_url, config=FAKE)
    assert summary["status"] == "completed"
    assert summary["documents"]["completed"] == 1 and summary["documents"]["failed"] == 4
    errors = {
        Path(e["path"]).name: e["error"]
        for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())
    }
    assert errors == {
        "pipe.png": "not a regular file (FIFO)",
        "pipe.pdf": "not a regular file (FIFO)",
        "zero.png": "not a regular file (character device)",
        "s.png": "not a regular file (socket)",
    }
    # The workers' load path never blocks either (a file swapped after discovery).
    for kind in ("fifo", "zero", "socket"):
        with pytest.raises(DocumentError, match=r"^not a regular file \("):
            load_image(str(files[kind]), max_pixels=LIMIT)
    with pytest.raises(DocumentError, match=r"^not a regular file \(FIFO\)$"):
        render_page(str(files["fifo_pdf"]), 0, dpi=72, max_pixels=LIMIT)


def test_a_broken_symlink_says_so(tmp_path: Path) -> None:
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (doc,) = _docs([str(tmp_path)])
    assert doc.error == "broken symbolic link (its target does not exist)"


def _same_names(tmp_path: Path) -> None:
    for p in ("p1/doc.png", "p2/doc.png", "r1/data/x.png", "r2/data/x.png", "r2/data/s/x.png"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        good_png(tmp_path / p, text=p)


def test_inputs_of_the_same_base_name_get_their_own_rel_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _same_names(tmp_path)
    monkeypatch.chdir(tmp_path)

    def rels(inputs: list[str]) -> list[str]:
        return sorted(c.rel_path for c in iter_paths(inputs))

    assert rels(["p1/doc.png", "p2/doc.png"]) == ["p1/doc.png", "p2/doc.png"]
    assert rels(["r1/data", "./r2/data/"]) == ["r1/data/x.png", "r2/data/s/x.png", "r2/data/x.png"]
    # one folder: relative to it, as before; one file: its name
    assert rels(["r2/data"]) == ["s/x.png", "x.png"]
    assert rels(["p1/doc.png"]) == ["doc.png"]
    # @list entries: as written; absolute ones and ones with .. without the leading /
    sub = tmp_path / "sub"
    sub.mkdir()
    (tmp_path / "list.txt").write_text(
        f"p1/doc.png\n# a comment\n{tmp_path / 'p2/doc.png'}\nsub/../r1/data\n"
    )
    assert rels(["@list.txt"]) == [
        "p1/doc.png",
        "r1/data/x.png",
        str(tmp_path / "p2/doc.png").lstrip("/"),
    ]
    monkeypatch.chdir(sub)
    assert rels(["../p1/doc.png", "../p2/doc.png"]) == sorted(
        str(tmp_path / p).lstrip("/") for p in ("p1/doc.png", "p2/doc.png")
    )


def test_same_base_names_each_get_their_own_text_file(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _same_names(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("p1/doc.png\np2/doc.png\n")
    cfg = {**FAKE, "formats": "jsonl,txt", "engine_options": {"text": "{name}"}}
    for name, inputs, expected in [
        ("files", ["p1/doc.png", "p2/doc.png"], ["p1/doc.png.txt", "p2/doc.png.txt"]),
        (
            "roots",
            ["r1/data", "r2/data"],
            ["r1/data/x.png.txt", "r2/data/s/x.png.txt", "r2/data/x.png.txt"],
        ),
        ("list", ["@list.txt"], ["p1/doc.png.txt", "p2/doc.png.txt"]),
    ]:
        out = tmp_path / f"out-{name}"
        ocrbatch.run(inputs, out, db=db_url, config=cfg, force=True)
        texts = sorted(str(p.relative_to(out / "text")) for p in (out / "text").rglob("*.txt"))
        assert texts == expected, name
        assert len({r["rel_path"] for r in _records(out)}) == len(expected)


def _job(st: Store, inputs: list[str]) -> int:
    return st.create_job(
        name="t",
        config=make_config(FAKE).model_dump(mode="json"),
        result_key="k",
        inputs=inputs,
        mode="sequential",
        max_retries=1,
    )


def _rel_paths(st: Store, job_id: int) -> dict[str, str]:
    return {d["path"]: d["rel_path"] for d in st.iter_documents(job_id)}


def test_store_keeps_rel_paths_unique_and_resume_names_the_same(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Labels can still meet: an absolute input is named by its path without the leading
    # /, which a relative input can spell too (the store's safety net then steps in).
    cwd = tmp_path / "cwd"
    a = tmp_path / "d" / "x.png"
    b = cwd / str(a).lstrip("/")
    c = cwd / str(b).lstrip("/")
    for p in (a, b, c):
        p.parent.mkdir(parents=True, exist_ok=True)
        good_png(p)
    monkeypatch.chdir(cwd)
    inputs = [str(a), str(a).lstrip("/"), str(b).lstrip("/")]
    st = Store(db_url)
    try:
        # uninterrupted, one batch per document
        whole = _job(st, inputs)
        ingest(st, st.get_job(whole), per_transaction=1)
        expected = _rel_paths(st, whole)
        assert expected == {
            str(a): str(a).lstrip("/"),
            str(b): str(b).lstrip("/"),
            str(c): str(c).lstrip("/"),
        }
        # a crash after the first batch, then resume's discovery
        crashed = _job(st, inputs)
        real_add = st.add_documents
        calls = 0

        def crash_after_one(*a: Any, **k: Any) -> tuple[int, int]:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise RuntimeError("crash")
            return real_add(*a, **k)

        monkeypatch.setattr(st, "add_documents", crash_after_one)
        with pytest.raises(RuntimeError):
            ingest(st, st.get_job(crashed), per_transaction=1)
        monkeypatch.setattr(st, "add_documents", real_add)
        ingest(st, st.get_job(crashed), per_transaction=1)
        assert _rel_paths(st, crashed) == expected
        # the same rel path twice in one batch: the second gets a name of its own
        job = _job(st, ["x"])
        docs = [DocumentRef(f"/a/{i}/doc.png", "doc.png", 1, None, error="x") for i in range(4)]
        st.add_documents(job, docs[:3], max_retries=1)
        st.add_documents(job, docs[3:], max_retries=1)
        # ... and when its absolute path is taken too, a short hash of it
        st.add_documents(
            job,
            [
                DocumentRef(p, "q/doc.png", 1, None, error="x")
                for p in ("/z/q/doc.png", "/q/doc.png")
            ],
            max_retries=1,
        )
        rels = _rel_paths(st, job)
        assert rels["/a/0/doc.png"] == "doc.png" and rels["/a/3/doc.png"] == "a/3/doc.png"
        assert rels["/z/q/doc.png"] == "q/doc.png"
        assert re.fullmatch(r"q/doc~[0-9a-f]{8}\.png", rels["/q/doc.png"])
        assert len(set(rels.values())) == 6
    finally:
        st.close()


def test_unreadable_subfolder_is_a_failed_entry_and_an_unreadable_root_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated (tests run as root, who reads everything): see test_cli_errors for the
    real thing as an unprivileged process."""
    root = tmp_path / "in"
    (root / "locked").mkdir(parents=True)
    good_png(root / "a.png")
    good_png(root / "locked" / "b.png")
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if os.fspath(path).endswith("locked"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    docs = {d.rel_path: d for d in _docs([str(root)])}
    assert docs["a.png"].error is None
    assert docs["locked"].error == "cannot read folder: Permission denied"
    assert docs["locked"].path == str(root / "locked")
    with pytest.raises(
        ConfigError, match=r"^cannot read input folder .*locked: Permission denied$"
    ):
        check_inputs([str(root / "locked")])


def test_missing_list_entries_are_failed_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    good_png(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text("a.png\nnope.png\nno/*.png\n")
    docs = {d.rel_path: d.error for d in _docs(["@list.txt"])}
    assert docs == {
        "a.png": None,
        "nope.png": "file not found (listed in list.txt)",
        "no/*.png": "no files match 'no/*.png' (listed in list.txt)",
    }


def _paths(out: Path) -> list[str]:
    return sorted(r["path"] for r in _records(out))


def test_out_db_and_cache_inside_the_input_root_are_never_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "in"
    root.mkdir()
    good_png(root / "a.png")
    text_pdf(root / "b.pdf", ["one", "two"])
    # a database and a cache named like documents, to show they are skipped by path
    db = f"sqlite:///{root / 'store.png'}"
    cache = root / "cache"
    cache.mkdir()
    good_png(cache / "page.png")
    out = root / "results"
    cfg = {**FAKE, "formats": "jsonl,txt,pdf,hocr", "cache_dir": str(cache), "force_ocr": True}
    for _ in range(3):
        summary = ocrbatch.run([root], out, db=db, config=cfg, force=True)
        assert summary["documents"]["total"] == 2 and summary["documents"]["failed"] == 0
        assert _paths(out) == [str(root / "a.png"), str(root / "b.pdf")]
    assert sorted(p.name for p in (out / "pdf").rglob("*.pdf")) == ["a.png.pdf", "b.pdf.pdf"]
    # the default out, ocrbatch-results/job-N in the working folder, run twice
    monkeypatch.chdir(root)
    for _ in range(2):
        summary = ocrbatch.run(["."], db=db, config=cfg, force=True)
        assert summary["documents"]["total"] == 2
    # a root inside the output folder, or the cache: a one-line error, no job
    jobs = len(ocrbatch.list_jobs(db=db))
    with pytest.raises(ConfigError, match=r"^input .*results/pdf is in the output folder /"):
        ocrbatch.run([out / "pdf"], out, db=db, config=cfg)
    with pytest.raises(ConfigError, match=r"is in the page cache"):
        ocrbatch.run([cache], tmp_path / "o", db=db, config=cfg)
    assert len(ocrbatch.list_jobs(db=db)) == jobs
    # an earlier job's output, named on purpose, is read as asked
    summary = ocrbatch.run([out / "pdf"], tmp_path / "again", db=db, config=cfg)
    assert summary["documents"]["total"] == 2
    # named in a list: reported, never silently dropped
    (tmp_path / "l.txt").write_text(f"{out / 'pdf' / 'a.png.pdf'}\n{root / 'a.png'}\n")
    docs = {
        Path(d.path).name: d.error
        for d in _docs(
            [f"@{tmp_path / 'l.txt'}"], exclude=((str(out.resolve()), "the output folder"),)
        )
    }
    assert docs["a.png"] is None
    assert docs["a.png.pdf"] == (
        f"is in the output folder {out.resolve()}: ocrbatch never reads its own files"
    )
