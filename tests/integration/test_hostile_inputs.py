"""Every hostile input of issue 10 (and those that held before it) in one parametrized
test: each case puts its bad file(s) beside two good documents and runs a real job
through the CLI (fake engine, every output format). For every case: each failed
document has a one-line reason, the good documents complete, every output file parses
(XML with lxml, CSV with the csv module, PDF with pypdfium2, JSON), and nothing is
written outside --out (and the store and cache)."""

from __future__ import annotations

import csv
import json
import os
import socket
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.badfiles import (
    bomb_png,
    encrypted_pdf,
    good_png,
    make_bad_inputs,
    text_pdf,
    truncated_pdf,
)

Cli = Any
FORMATS = "jsonl,csv,json,txt,hocr,alto,pdf"


@dataclass
class Case:
    """What a case expects of the documents it added: name -> "completed" or a
    substring of the failed document's one-line reason."""

    expect: dict[str, str]
    inputs: list[str] = field(default_factory=list)  # default: the case's folder
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    unprivileged: bool = False
    runs: int = 1


Builder = Callable[[Path, Path], Case]
CASES: dict[str, Builder] = {}


def case(name: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        CASES[name] = fn
        return fn

    return register


@case("zero_byte_truncated_bomb_not_an_image")
def _classic(src: Path, tmp: Path) -> Case:
    files = make_bad_inputs(src)
    return Case({p.name: "" for p in files.values()} | {"notes.png": ""})


@case("zip_renamed_pdf_and_broken_xref")
def _pdfs(src: Path, tmp: Path) -> Case:
    with zipfile.ZipFile(src / "archive.pdf", "w") as z:
        z.writestr("a.txt", "not a pdf")
    good = text_pdf(tmp / "whole.pdf", ["one", "two"])
    data = good.read_bytes()
    (src / "xref.pdf").write_bytes(data.replace(b"xref", b"xfer"))  # PDFium repairs it
    truncated_pdf(src / "cut.pdf", good)
    return Case({"archive.pdf": "", "xref.pdf": "completed", "cut.pdf": ""})


@case("symlink_loop_and_dev_zero_link")
def _links(src: Path, tmp: Path) -> Case:
    (src / "sub").mkdir()
    good_png(src / "sub" / "inner.png")
    (src / "sub" / "loop").symlink_to(src, target_is_directory=True)
    (src / "zero.png").symlink_to("/dev/zero")
    return Case({"inner.png": "completed", "zero.png": "not a regular file"})


@case("fifo_and_socket")
def _special(src: Path, tmp: Path) -> Case:
    os.mkfifo(src / "pipe.png")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(src / "sock.png"))
    _open_sockets.append(s)
    return Case({"pipe.png": "FIFO", "sock.png": "socket"})


_open_sockets: list[socket.socket] = []


@case("odd_names")
def _names(src: Path, tmp: Path) -> Case:
    names = [
        "with space.png",
        'quote\'s "double".png',
        "a..b.png",
        "new\nline.png",
        "ünïcødé 漢字.png",
        "ctrl\x01\x1bname.png",
        "-starts-with-dash.png",
        "=cmd|' -C calc'!A0.png",
        "+plus.png",
        "@at.png",
        "\ttab.png",
        "n" * 246 + ".png",  # 250 bytes: outputs must shorten it
    ]
    for n in names:
        good_png(src / n)
    return Case({n: "completed" for n in names})


@case("name_not_utf8")
def _not_utf8(src: Path, tmp: Path) -> Case:
    raw = os.fsencode(src) + b"/caf\xe9.png"
    good_png(Path(os.fsdecode(raw)))
    return Case({"caf\\xe9.png": "not valid UTF-8"})


@case("text_with_control_and_formula_characters")
def _text(src: Path, tmp: Path) -> Case:
    good_png(src / "t.png")
    text = '=HYPERLINK("x") \x01bell\x1b[31m \ufffe\uffff -1+2 @SUM(A1)'
    return Case({"t.png": "completed"}, args=["--engine-opt", f"text={text}"])


@case("same_base_names_two_roots_two_files_a_list")
def _same_names(src: Path, tmp: Path) -> Case:
    for root in ("r1", "r2"):
        (tmp / root / "data").mkdir(parents=True)
        good_png(tmp / root / "data" / "doc.png")
    for p in ("p1", "p2"):
        (tmp / p).mkdir()
        good_png(tmp / p / "one.png")
    (tmp / "list.txt").write_text("p1/one.png\np2/one.png\nr1/data/doc.png\n")
    return Case(
        {"doc.png": "completed", "one.png": "completed"},
        inputs=[str(src), "r1/data", "r2/data", "p1/one.png", "p2/one.png", "@list.txt"],
    )


@case("unreadable_subfolder")
def _unreadable(src: Path, tmp: Path) -> Case:
    (src / "locked").mkdir()
    good_png(src / "locked" / "hidden.png")
    (src / "locked").chmod(0)
    return Case({"locked": "cannot read folder"}, unprivileged=True)


@case("out_inside_the_input_root_three_times")
def _out_inside(src: Path, tmp: Path) -> Case:
    return Case({}, args=["--out", str(src / "results")], runs=3)


@case("encrypted_pdf_with_password_and_searchable_pdf")
def _encrypted(src: Path, tmp: Path) -> Case:
    encrypted_pdf(src / "locked.pdf", user="s3cret")
    return Case({"locked.pdf": "completed"}, env={"OCRBATCH_PDF_PASSWORD": "s3cret"},
                args=["--force-ocr"])  # fmt: skip


@case("bomb_in_a_subfolder")
def _bomb(src: Path, tmp: Path) -> Case:
    (src / "deep" / "er").mkdir(parents=True)
    bomb_png(src / "deep" / "er" / "bomb.png")
    return Case({"bomb.png": "pixels"})


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    while _open_sockets:
        _open_sockets.pop().close()


def _check_outputs(out: Path, password: str | None) -> list[dict[str, Any]]:
    import pypdfium2 as pdfium
    from lxml import etree

    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    json.loads((out / "results.json").read_text())
    json.loads((out / "summary.json").read_text())
    for line in (out / "errors.jsonl").read_text().splitlines():
        json.loads(line)
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(recs)
    for row in rows:
        for key in ("path", "rel_path", "text", "error"):
            cell = row[key]
            assert not cell or cell[0] not in "=+-@\t\r", (key, cell)  # never a formula
    for xml in [*out.glob("hocr/**/*.hocr"), *out.glob("alto/**/*.xml")]:
        etree.parse(str(xml))  # raises on invalid XML
    for pdf in out.glob("pdf/**/*.pdf"):
        # The searchable copy of an encrypted input stays encrypted with its password.
        doc = pdfium.PdfDocument(str(pdf), password=password)
        assert len(doc) >= 1
        doc.close()
    return recs


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_fails_alone_and_every_output_parses(
    name: str, tmp_path: Path, cli: Cli
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good_png(src / "good one.png")
    good_png(src / "good two.png")
    case_ = CASES[name](src, tmp_path)
    out = src / "results" if "--out" in case_.args else tmp_path / "out"
    inputs = case_.inputs or [str(src)]
    args = ["run", *inputs, "--engine", "fake", "--preprocess", "off", "--format", FORMATS,
            "--workers", "2", *case_.args]  # fmt: skip
    if "--out" not in case_.args:
        args += ["--out", str(out)]
    before = _tree(tmp_path) - {"cli.db", "cli.db-wal", "cli.db-shm", "cli.db-journal"}
    env = {"OCRBATCH_CACHE": str(tmp_path / "cache"), **case_.env}
    for _ in range(case_.runs):
        proc = cli(*args, env=env, unprivileged=case_.unprivileged, timeout=240)
        assert proc.returncode in (0, 8), proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
    recs = _check_outputs(out, case_.env.get("OCRBATCH_PDF_PASSWORD"))
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by_name.setdefault(Path(r["path"]).name, []).append(r)
    for good in ("good one.png", "good two.png"):
        assert [r["status"] for r in by_name[good]] == ["completed"]
    assert len({r["path"] for r in recs}) == len(recs)  # each document once
    assert len({r["rel_path"] for r in recs}) == len(recs)  # never one output for two
    for doc, want in case_.expect.items():
        got = by_name.get(doc)
        assert got, f"{doc!r} missing from results: {sorted(by_name)}"
        for r in got:
            if want == "completed":
                assert r["status"] == "completed", r["error"]
            else:
                assert r["status"] == "failed"
                assert want in r["error"] and "\n" not in r["error"], r["error"]
    for r in recs:  # a failed document's reason is one line
        assert r["status"] != "failed" or (r["error"] and "\n" not in r["error"])
    # Nothing from the tool's own output folder was read as an input.
    assert not [r for r in recs if "/results/" in r["path"]]
    # Nothing written outside --out, the store and the page cache.
    after = _tree(tmp_path) - {"cli.db", "cli.db-wal", "cli.db-shm", "cli.db-journal"}
    allowed = ("out", "in/results", "cache")
    stray = [p for p in after - before if not p.startswith(allowed)]
    assert not stray, stray
