"""Hostile inputs at export (issue 10): file names near the 255-byte limit, encrypted
PDFs, characters XML forbids, spreadsheet formulas, temp files of a killed writer.
The fake engine and --preprocess off keep each test to a few seconds."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pikepdf
import pypdfium2 as pdfium
import pytest
from lxml import etree

from ocrbatch.exporters import csv_cell, export_all, remove_stale_temp_files, temp_prefix
from ocrbatch.exporters.atomic import atomic_writer
from ocrbatch.exporters.layout_xml import alto_document, hocr_document, xml_safe
from ocrbatch.exporters.paths import DOCUMENT_FORMATS, NAME_MAX, fit_name, output_relpath
from ocrbatch.model import Block, Line, PageText, Word
from tests.badfiles import encrypted_pdf, good_png

Cli = Callable[..., CompletedProcess[str]]
FAKE = ("--engine", "fake", "--preprocess", "off", "--mode", "sequential", "--max-retries", "0")


def _records(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["rel_path"]: r for r in map(json.loads, lines)}


def _errors(out: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (out / "errors.jsonl").read_text().splitlines()]


def _ok(proc: CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def _nbytes(name: str) -> int:
    return len(name.encode())


# -- row 14: temp files of a killed writer ------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temp_files_of_dead_writers_are_removed_by_the_next_export(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good_png(src / "a.png")
    out = tmp_path / "out"
    _ok(cli("run", str(src), "--out", str(out), "--format", "txt", *FAKE))
    host = temp_prefix().split("-")[2]
    dead, live = _dead_pid(), os.getpid()
    stale = [
        out / f".ocrbatch-{dead}-{host}-x.tmp",
        out / "text" / f".ocrbatch-{dead}-{host}-y.tmp",  # beside a per-document file
    ]
    kept = [
        out / f".ocrbatch-{live}-{host}-x.tmp",  # a writer still at work
        out / f".ocrbatch-{dead}-{'0' * 6 if host != '0' * 6 else '1' * 6}-x.tmp",  # elsewhere
        out / ".results.jsonl.abc.tmp",  # not ours to judge
        out / "notes.tmp",
        out / "mine" / f".ocrbatch-{dead}-{host}-z.tmp",  # a folder of the user's: not ours
    ]
    (out / "mine").mkdir()
    for p in stale + kept:
        p.write_bytes(b"x" * 100)
    _ok(cli("export", "1", "--format", "txt"))
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)


def test_remove_stale_temp_files_leaves_links_and_folders(tmp_path: Path) -> None:
    host = temp_prefix().split("-")[2]
    dead = _dead_pid()
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / f".ocrbatch-{dead}-{host}-l.tmp"
    link.symlink_to(target)
    folder = tmp_path / f".ocrbatch-{dead}-{host}-d.tmp"
    folder.mkdir()
    stale = tmp_path / "sub" / f".ocrbatch-{dead}-{host}-f.tmp"
    stale.parent.mkdir()
    stale.write_text("x")
    assert remove_stale_temp_files(tmp_path) == 1
    assert not stale.exists() and link.is_symlink() and folder.is_dir()
    assert target.read_text() == "keep"


def test_atomic_temp_names_are_short_and_never_derived_from_the_target(tmp_path: Path) -> None:
    target = tmp_path / ("x" * 255)  # the longest name a file system takes
    with atomic_writer(target) as f:
        f.write("fits")
        (tmp,) = [p for p in tmp_path.iterdir() if p != target]
        assert tmp.name.startswith(f".ocrbatch-{os.getpid()}-") and tmp.name.endswith(".tmp")
        assert len(tmp.name) < 40
    assert target.read_text() == "fits"
    assert sorted(tmp_path.iterdir()) == [target]


# -- row 2: names near the file-system limit ----------------------------------------------


def test_fit_name_keeps_what_fits_and_adds_a_hash_of_the_full_name() -> None:
    assert fit_name("scan.png", ".txt") == "scan.png.txt"
    short = "a" * 250
    assert fit_name(short, ".hocr") == short + ".hocr"  # 255 bytes: fits
    name = "ü" * 125 + ".png"  # 254 bytes
    h = hashlib.sha256(name.encode()).hexdigest()[:8]
    for suffix in (".txt", ".hocr", ".xml", ".pdf", ""):
        fitted = fit_name(name, suffix)
        if _nbytes(name + suffix) <= NAME_MAX:
            assert fitted == name + suffix
            continue
        assert fitted.endswith(f"~{h}{suffix}") and _nbytes(fitted) <= NAME_MAX
        assert name.startswith(fitted[: -len(f"~{h}{suffix}")])  # a head, whole characters
        assert _nbytes(fitted) > NAME_MAX - 2  # as much as fits (ü is 2 bytes)
        assert fit_name(name, suffix) == fitted  # deterministic
    # Every component is fitted, folders too; the mapping is what document files use.
    rel = output_relpath("pdf", f"{'d' * 300}/{name}")
    assert rel.parts[0] == "pdf" and all(_nbytes(p) <= NAME_MAX for p in rel.parts)
    assert rel.parts[1] == fit_name("d" * 300)


def test_a_250_byte_file_name_completes_and_every_format_is_mapped(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    long_a = "a" * 246 + ".png"  # 250 bytes: <name>.gt.txt is past the limit
    long_u = "ü" * 125 + ".png"  # 254 bytes: most outputs need shortening
    good_png(src / long_a)
    good_png(src / long_u)
    # A ground truth that does fit (<stem>.gt.txt) is still found beside the input.
    (src / ("a" * 246 + ".gt.txt")).write_text(f"fake text of {long_a} page 1")
    out = tmp_path / "out"
    fmt = "jsonl,csv,json,txt,hocr,alto,pdf"
    _ok(cli("run", str(src), "--out", str(out), "--format", fmt, *FAKE))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["documents"]["completed"] == 2 and summary["export_errors"] == 0
    assert summary["accuracy"]["documents"] == 1 and summary["accuracy"]["cer"] == 0.0
    assert _errors(out) == []
    recs = _records(out)
    assert set(recs) == {long_a, long_u}
    for rec in recs.values():
        assert set(rec["outputs"]) == set(DOCUMENT_FORMATS)
        for rel in rec["outputs"].values():
            assert (out / rel).is_file(), rel
            assert all(_nbytes(p) <= NAME_MAX for p in Path(rel).parts)
    h = hashlib.sha256(long_u.encode()).hexdigest()[:8]
    assert all(f"~{h}." in rel for rel in recs[long_u]["outputs"].values())
    assert recs[long_a]["outputs"]["txt"] == f"text/{long_a}.txt"  # 254 bytes: kept
    assert not [p for p in out.rglob(".*") if p.name.startswith(".ocrbatch-")]
    # `export` of the finished job writes the same files to the same places.
    again = tmp_path / "again"
    _ok(cli("export", "1", "--format", fmt, "--out", str(again)))
    back = _records(again)
    for name, rec in recs.items():
        assert back[name]["outputs"] == rec["outputs"]
        for rel in rec["outputs"].values():
            assert (again / rel).read_bytes() == (out / rel).read_bytes() or rel.endswith(".pdf")
    assert json.loads((again / "summary.json").read_text())["export_errors"] == 0


def test_every_known_format_has_one_exporter() -> None:
    from ocrbatch.config import KNOWN_FORMATS
    from ocrbatch.exporters import DOCUMENT_WRITERS, RECORD_FORMATS

    assert DOCUMENT_WRITERS.keys() == DOCUMENT_FORMATS.keys()
    assert sorted(KNOWN_FORMATS) == sorted([*RECORD_FORMATS, *DOCUMENT_WRITERS])


def test_an_input_gone_since_the_run_is_an_export_error(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    good_png(good)
    gone = tmp_path / "gone.png"

    def docs() -> list[dict[str, Any]]:
        page = PageText("hi", 0.9, 400, 120, ())
        row = {"page_index": 0, "status": "completed", "result_json": page.to_dict()}
        return [
            {"path": str(p), "rel_path": p.name, "status": "completed", "pages": [row]}
            for p in (gone, good)
        ]

    out = tmp_path / "out"
    result = export_all(["jsonl", "pdf", "txt"], docs, out)
    (problem,) = result.problems
    assert (problem.path, problem.format) == (str(gone), "pdf")
    assert problem.error == "file not found (moved or deleted after discovery?)"
    assert problem.record()["kind"] == "export"
    assert (out / "pdf" / "good.png.pdf").is_file() and (out / "text" / "gone.png.txt").is_file()
    recs = _records(out)
    assert recs["gone.png"]["outputs"] == {"txt": "text/gone.png.txt"}
    assert recs["good.png"]["outputs"] == {"pdf": "pdf/good.png.pdf", "txt": "text/good.png.txt"}


# -- row 3: encrypted PDFs, and a PDF that cannot be written ------------------------------


def _pdf_text(path: Path, password: str | None = None) -> str:
    pdf = pdfium.PdfDocument(str(path), password=password)
    try:
        return "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    finally:
        pdf.close()


def test_encrypted_pdf_with_password_gets_its_searchable_pdf(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    encrypted_pdf(src / "secret.pdf", user="pw")
    good_png(src / "good.png")
    out = tmp_path / "out"
    _ok(cli("run", str(src), "--out", str(out), "--format", "pdf", "--password", "pw", *FAKE))
    recs = _records(out)
    assert recs["secret.pdf"]["outputs"] == {"pdf": "pdf/secret.pdf.pdf"}
    assert recs["good.png"]["outputs"] == {"pdf": "pdf/good.png.pdf"}
    # The searchable copy of an encrypted PDF stays encrypted, with the same password.
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(out / "pdf" / "secret.pdf.pdf")
    assert "Secret page two" in _pdf_text(out / "pdf" / "secret.pdf.pdf", "pw")
    assert "good.png" in _pdf_text(out / "pdf" / "good.png.pdf")
    assert json.loads((out / "summary.json").read_text())["export_errors"] == 0

    # A wrong password at export: that document's PDF is one export error, the other's
    # PDF is written, and the export succeeds.
    again = tmp_path / "again"
    proc = cli("export", "1", "--format", "pdf", "--out", str(again), "--password", "wrong")
    _ok(proc)
    assert (again / "pdf" / "good.png.pdf").is_file()
    assert not (again / "pdf" / "secret.pdf.pdf").exists()
    (err,) = _errors(again)
    assert err["kind"] == "export" and err["format"] == "pdf"
    assert err["path"].endswith("secret.pdf") and "\n" not in err["error"]
    assert err["error"] == (
        "cannot write searchable PDF: encrypted PDF: the --password given does not open it"
    )
    assert json.loads((again / "summary.json").read_text())["export_errors"] == 1
    recs = _records(again)
    assert recs["secret.pdf"]["outputs"] == {} and recs["good.png"]["outputs"]
    assert "1 document files not written" in proc.stderr
    # The store forgot the job's password when it ended: without one, that document's
    # PDF is an export error that says what to do; OCRBATCH_PDF_PASSWORD works as --password.
    third = tmp_path / "third"
    _ok(cli("export", "1", "--format", "pdf", "--out", str(third)))
    (err,) = _errors(third)
    assert err["error"].endswith("encrypted PDF: it needs a password (pass --password)")
    fourth = tmp_path / "fourth"
    env = {"OCRBATCH_PDF_PASSWORD": "pw"}
    _ok(cli("export", "1", "--format", "pdf", "--out", str(fourth), env=env))
    assert (fourth / "pdf" / "secret.pdf.pdf").is_file() and _errors(fourth) == []


def test_an_owner_only_encrypted_pdf_stays_open_to_all(tmp_path: Path) -> None:
    from ocrbatch.exporters.pdf import searchable_pdf

    src = encrypted_pdf(tmp_path / "owner-only.pdf", user="")
    row = {"page_index": 0, "status": "completed", "result_json": None}
    doc = {"path": str(src), "rel_path": src.name, "status": "completed", "pages": [row]}
    # The job's --password is for other documents: this one opened without it.
    others = "for-the-others"
    searchable_pdf(doc, tmp_path / "out.pdf", password=others)
    with pikepdf.open(tmp_path / "out.pdf") as pdf:
        assert pdf.is_encrypted and len(pdf.pages) == 2


# -- row 5: characters XML 1.0 forbids ----------------------------------------------------

BAD_XML = "\x01\x1b\x08\ufffe\uffff"


def test_xml_safe_replaces_what_xml_forbids_and_keeps_the_rest() -> None:
    assert xml_safe("a\tb\nc\rd é 東 \U0001f600") == "a\tb\nc\rd é 東 \U0001f600"
    assert xml_safe("x\x00\x01\x1b\ud800\udfff\ufffe\uffffy") == "x" + "\ufffd" * 7 + "y"


def test_hocr_and_alto_parse_with_lone_surrogates_and_control_characters() -> None:
    bad = "w\ud800\x01\ufffe"
    box = (0, 0, 9, 9)
    line = Line((Word(bad, box, 0.9),), box, 0.9)
    page = PageText(bad, 0.9, 100, 50, (Block((line,), box),))
    row = {"page_index": 0, "status": "completed", "result_json": page.to_dict()}
    doc = {"path": f"/in/n{BAD_XML}\udcff.png", "rel_path": f"n{BAD_XML}.png", "pages": [row]}
    for data in (hocr_document(doc), alto_document(doc)):
        root = etree.fromstring(data)
        words = [e.text or e.get("CONTENT") for e in root.iter() if "\ufffd" in (e.text or
                 e.get("CONTENT") or "")]  # fmt: skip
        assert "w\ufffd\ufffd\ufffd" in words


def test_control_characters_in_text_and_file_names_give_parseable_xml(
    cli: Cli, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good_png(src / f"ctl{BAD_XML}.png")
    good_png(src / "plain.png")
    out = tmp_path / "out"
    text = json.dumps("{name} a\x01b \x1b[31m \ufffe\uffff end")
    _ok(cli("run", str(src), "--out", str(out), "--format", "hocr,alto",
            "--engine-opt", f"text={text}", *FAKE))  # fmt: skip
    files = sorted((out / "hocr").iterdir()) + sorted((out / "alto").iterdir())
    assert len(files) == 4
    for f in files:
        root = etree.parse(str(f)).getroot()  # raises on invalid XML
        content = "".join(root.itertext()) + " ".join(e.get("CONTENT") or "" for e in root.iter())
        assert "a\ufffdb" in content and "\x01" not in content


# -- row 6: CSV injection -----------------------------------------------------------------


def test_csv_cell() -> None:
    for bad in ("=1+2", "+1", "-x", "@SUM(A1)", "\tx", "\rx", "\nx"):
        assert csv_cell(bad) == "'" + bad
    for fine in ("scan.png", "", "1-2", "a=b"):
        assert csv_cell(fine) == fine
    for number in (-1.5, 0, 3, None):
        assert csv_cell(number) == number


def test_csv_cells_a_spreadsheet_would_run_start_with_a_quote(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    names = ["=1+2.png", "+cmd.png", "-x.png", "@SUM(A1).png", "\ttab.png", "\rcr.png", "ok.png"]
    for n in names:
        good_png(src / n)
    out = tmp_path / "out"
    _ok(cli("run", str(src), "--out", str(out), "--format", "csv",
            "--engine-opt", "text={name}", *FAKE))  # fmt: skip
    with (out / "results.csv").open(encoding="utf-8", newline="") as f:
        rows = {r["rel_path"]: r for r in csv.DictReader(f)}
    assert len(rows) == len(names)
    for n in names:
        key = n if n == "ok.png" else "'" + n
        row = rows[key]
        assert row["text"] == key  # the text is the file name: neutralized the same way
        assert row["status"] == "completed" and row["pages"] == "1"
        assert float(row["confidence"]) == 0.9  # numbers stay numbers
    # results.jsonl keeps the values as they are.
    assert set(_records(out)) == set(names)


def test_a_full_disk_in_a_per_document_format_stops_the_export_in_one_line(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import ocrbatch
    from ocrbatch.errors import OutputError
    from ocrbatch.exporters import registry
    from ocrbatch.service import open_store

    src = tmp_path / "in"
    src.mkdir()
    good_png(src / "a.png")
    cfg = {"engine": "fake", "preprocess": "off", "mode": "sequential", "formats": "txt"}

    def full(doc: Any, dest: Path, options: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(dest))

    monkeypatch.setitem(registry.DOCUMENT_WRITERS, "txt", full)
    # Not one document's problem: every later file would fail alike.
    with pytest.raises(OutputError, match=r"No space left on device.*ocrbatch export 1"):
        ocrbatch.run([str(src)], tmp_path / "out", db=db_url, config=cfg)
    st = open_store(db_url)
    try:
        assert st.get_job(1).outputs == "incomplete"
    finally:
        st.close()
