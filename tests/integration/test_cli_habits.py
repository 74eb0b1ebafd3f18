"""Issue 11: the CLI and the Python API as their users expect them. One test (or a
few) per numbered point of the issue; the CLI runs in a subprocess (the `cli` fixture),
help is rendered at 80 columns."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ocrbatch
from tests.badfiles import good_png
from tests.conftest import REPO

Cli = Any
FAKE = ["--engine", "fake", "--preprocess", "off", "--workers", "2"]


def _pngs(folder: Path, names: list[str]) -> Path:
    """Pages of distinct content (same content would be reused from an earlier job)."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        good_png(folder / n, text=f"{folder.name} {n}")
    return folder


def _help(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    proc = subprocess.run([sys.executable, "-m", "ocrbatch", *args, "--help"], env=env,
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return proc.stdout


# -- 1. exit codes ------------------------------------------------------------------------


def test_failed_documents_exit_8_unless_fail_under_allows_them(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", ["a.png", "b.png", "c.png", "bad.png"])
    args = ["run", str(src), *FAKE, "--engine-opt", "bad_on=bad", "--out"]
    assert cli(*args, str(tmp_path / "o1")).returncode == 8  # 3 of 4: not a success
    assert cli(*args, str(tmp_path / "o2"), "--fail-under", "0.75").returncode == 0
    assert cli(*args, str(tmp_path / "o3"), "--fail-under", "0.8").returncode == 8
    every = cli("run", str(src), *FAKE, "--engine-opt", "bad_on=png", "--out", str(tmp_path / "o4"))
    assert every.returncode == 9  # the job failed: every document failed


def test_every_exit_code_is_written_down_in_help_and_readme() -> None:
    from ocrbatch.cli.app import EXIT_CODES

    top = _help()
    readme = (REPO / "README.md").read_text()
    for code, _ in EXIT_CODES:
        assert re.search(rf"\b{code}: ", top), code
        assert re.search(rf"\| {code} \|", readme), f"README lacks exit code {code}"


# -- 2. --json on every listing and status command --------------------------------------


def test_listing_and_status_commands_have_json(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", ["a.png"])
    cli("run", str(src), *FAKE, "--out", str(tmp_path / "o"), "--name", "one", check=True)
    jobs = json.loads(cli("jobs", "--json", check=True).stdout)
    assert [(j["job"], j["name"], j["status"]) for j in jobs] == [(1, "one", "completed")]
    assert json.loads(cli("status", "one", "--json", check=True).stdout)["pages_done"] == 1
    assert isinstance(json.loads(cli("engines", "--json", check=True).stdout), list)
    assert json.loads(cli("eval", "1", "--json", check=True).stdout)["accuracy"] is None


# -- 3. hints that work when pasted -------------------------------------------------------


def test_hints_carry_the_store_they_are_about(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", ["a.png"])
    (src / "a.gt.txt").write_text("fake text of a.png page 1\n")
    db = f"sqlite:///{tmp_path / 'own.db'}"
    proc = cli("run", str(src), *FAKE, "--out", str(tmp_path / "o"), "--db", db, check=True)
    hint = re.search(r"`(ocrbatch eval 1[^`]*)`", proc.stderr)
    assert hint and f"--db {db}" in hint.group(1)
    pasted = hint.group(1).split()[1:]  # as a person would paste it
    assert cli(*pasted, check=True).returncode == 0
    missing = cli("status", "99", "--db", db)
    assert missing.returncode == 5
    assert f"no job '99' in {db}; `ocrbatch jobs --db {db}` lists the jobs there" in missing.stderr


def test_pause_says_how_to_continue_and_writes_partial_results(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", [f"p{i}.png" for i in range(3)])
    db = f"sqlite:///{tmp_path / 'own.db'}"
    ocrbatch.submit([src], tmp_path / "out", db=db, engine="fake", preprocess="off",
                    name="my scans")  # fmt: skip
    paused = cli("pause", "my scans", "--db", db, check=True)
    hint = re.search(r"`(ocrbatch export [^`]*)`", paused.stdout)
    assert hint and f"--db {db}" in hint.group(1)
    # A paused job's outputs on request, marked partial (point 6), by the pasted hint.
    exported = cli(*shlex.split(hint.group(1))[1:], check=True)
    assert "partial" in exported.stdout
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["partial"] is True


def test_hints_of_other_commands_carry_the_store_too(tmp_path: Path, cli: Cli) -> None:
    db = f"sqlite:///{tmp_path / 'own.db'}"
    cli("token", "create", "--name", "alice", "--db", db, check=True)
    wrong = cli("token", "revoke", "bob", "--db", db)
    assert wrong.returncode == 2
    hint = re.search(r"`(ocrbatch token list[^`]*)`", wrong.stderr)
    assert hint and f"--db {db}" in hint.group(1)
    assert "alice" in cli(*shlex.split(hint.group(1))[1:], check=True).stdout
    src = _pngs(tmp_path / "in", ["a.png"])
    cli("run", str(src), *FAKE, "--out", str(tmp_path / "o"), "--db", db, check=True)
    with pytest.raises(ocrbatch.OcrbatchError) as exc:  # the service's resume of job 1
        ocrbatch.release(1, db=db)
    assert f"`ocrbatch resume 1 --db {db}` runs it here" in str(exc.value)


# -- 4. ocrbatch on PATH ------------------------------------------------------------------


def test_readme_says_how_to_get_ocrbatch_on_path() -> None:
    readme = (REPO / "README.md").read_text()
    assert ". .venv/bin/activate" in readme and "pipx install ." in readme


# -- 5. the summary names the output folder and the error log ----------------------------


def test_summary_names_the_results_and_the_error_log(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", ["a.png", "bad.png"])
    proc = cli("run", str(src), *FAKE, "--engine-opt", "bad_on=bad")  # default --out
    out = tmp_path / "ocrbatch-results" / "job-1"
    assert proc.returncode == 8 and (out / "results.jsonl").is_file()
    flat = " ".join(proc.stdout.split())
    assert "results" in flat and "errors" in flat and "errors.jsonl" in flat
    assert "[default:./ocrbatch-results/job-ID]" in re.sub(r"[\s│]", "", _help("run"))


# -- 7. no traces of what failed -----------------------------------------------------------


def test_a_refused_out_leaves_no_job_and_names_are_never_guessed(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", ["a.png"])
    (tmp_path / "afile").write_text("x")
    proc = cli("run", str(src), *FAKE, "--out", str(tmp_path / "afile"))
    assert proc.returncode == 3
    assert json.loads(cli("jobs", "--json", check=True).stdout) == []  # no pending 0/0 job
    for out in ("o1", "o2"):
        cli("run", str(src), *FAKE, "--out", str(tmp_path / out), "--name", "twin", check=True)
    twin = cli("status", "twin")
    assert twin.returncode == 2
    assert "2 jobs are named 'twin' (ids 2, 1): give the id" in twin.stderr


# -- 8. help that reads -------------------------------------------------------------------


def test_run_help_at_80_columns_has_panels_metavars_defaults_and_examples() -> None:
    text = _help("run")
    assert "…" not in text  # no option name or value cut
    for panel in ("Input and pages", "Engine", "Output", "Execution", "Accuracy",
                  "Cluster (distributed mode)"):  # fmt: skip
        assert f"─ {panel} " in text
    assert "<bool>" not in text and "<list[str]>" not in text  # Typer's type names
    assert "{INPUTS}..." in text and "{INPUTS...}" not in text
    for shown in ("--workers,--jobs", "-j", "-l", "searchable", "[default: tesseract]",
                  "[default: 120.0]", "SECONDS", "ocrbatch run scans/ -o results/"):  # fmt: skip
        assert shown in text, shown
    first_panel = text.index("╭")
    assert "ocrbatch run scans/" in text[:first_panel]  # examples at the top
    assert max(len(line) for line in text.splitlines()) <= 80


def test_every_option_of_eval_and_jobs_has_help() -> None:
    for command in ("eval", "jobs", "status", "export", "resume", "worker", "submit", "watch",
                    "serve"):  # fmt: skip
        text = _help(command)
        assert "…" not in text, f"{command} --help cuts a name or value at 80 columns"
        for line in text.splitlines():
            m = re.match(r"│ (--[a-z-]+)\s+(?:-\w\s+)?(?:[A-Z=]+\s+)?(.*?)\s*│$", line)
            if m and m.group(1) != "--help":
                assert m.group(2), f"{command} {m.group(1)} has no help"


# -- 9. version, options after the command, completion, -q/-v ---------------------------


def test_version_alone_and_output_options_after_the_command(tmp_path: Path, cli: Cli) -> None:
    version = subprocess.run([sys.executable, "-m", "ocrbatch", "--version"],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert version.returncode == 0 and version.stdout.strip() == f"ocrbatch {ocrbatch.__version__}"
    src = _pngs(tmp_path / "in", ["a.png"])
    quiet = cli("run", str(src), *FAKE, "--out", str(tmp_path / "o"), "-q", "--progress", "log")
    assert quiet.returncode == 0 and "[info" not in quiet.stderr
    verbose = cli("run", str(src), *FAKE, "--out", str(tmp_path / "o2"), "-v")
    assert verbose.returncode == 0


def test_shell_completion_script_is_offered() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ocrbatch")), "--show-completion", "bash"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "_ocrbatch_completion" in proc.stdout
    assert "--install-completion" in _help()


# -- 10. OCRmyPDF's habits; messages in the CLI's words ----------------------------------


def test_ocrmypdf_habits_and_cli_worded_messages(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", ["a.png"])
    proc = cli("run", str(src), "--engine", "fake", "--preprocess", "off", "-j", "1",
               "--format", "PDF,Txt", "--out", str(tmp_path / "o"), check=True)  # fmt: skip
    assert (tmp_path / "o" / "pdf" / "a.png.pdf").is_file()
    assert (tmp_path / "o" / "text" / "a.png.txt").is_file()
    assert "with 1 workers" in proc.stdout
    bad = cli("run", str(src), "--format", "text", "--out", str(tmp_path / "o"))
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: --format: unknown format 'text' (known: jsonl, csv, json, txt, hocr, alto, "
        "pdf) (given: 'text')"
    )
    lang = cli("run", str(src), "-l", "deu", "--out", str(tmp_path / "o"))
    assert lang.returncode == 2 and "no deu.traineddata in " in lang.stderr
    listed = cli("engines", check=True).stdout
    assert "tesseract" in listed and "fake" not in listed
    assert "fake" in cli("engines", "--all", check=True).stdout


# -- 11. eval's rows read as one; status's ETA for people -------------------------------


def test_eval_confidence_covers_the_pages_it_scores(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", ["scored.png", "unscored.png"])
    (src / "scored.gt.txt").write_text("fake text of scored.png page 1\n")
    cli("run", str(src), *FAKE, "--out", str(tmp_path / "o"), check=True)
    acc = json.loads(cli("eval", "1", "--json", check=True).stdout)["accuracy"]
    assert acc["pages"] == 1 and acc["mean_confidence"] == pytest.approx(0.9)
    assert acc["by_folder"]["."]["pages"] == 1


def test_status_eta_is_a_duration_and_a_local_time() -> None:
    import datetime as dt

    from ocrbatch.cli.jobs import _when

    at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=754)).isoformat()
    shown = _when(at, 754.0)
    local = dt.datetime.fromisoformat(at).astimezone()
    assert shown == f"12 min 34 s (at {local:%H:%M:%S} local)"
    assert _when(None, None) == "-"


# -- 12. the Python API -------------------------------------------------------------------


def test_python_api_takes_the_cli_option_names(tmp_path: Path, db_url: str) -> None:
    src = _pngs(tmp_path / "in", ["a.png"])
    summary = ocrbatch.run([src], out=tmp_path / "o", db=db_url, engine="fake",
                           preprocess="off", workers=1, format="jsonl,txt")  # fmt: skip
    assert summary["documents"]["completed"] == 1 and summary["workers"] == 1
    assert (tmp_path / "o" / "text" / "a.png.txt").is_file()
    assert ocrbatch.RunConfig(workers=2, format="pdf").format == ("jsonl", "pdf")
    with pytest.raises(ocrbatch.ConfigError, match=r"^--workers: "):
        ocrbatch.run([src], out=tmp_path / "o2", db=db_url, engine="fake", workers=0)


# -- 13. images without a resolution get a page size from their letters ------------------


def test_image_without_dpi_gets_a_page_size_from_its_letters(tmp_path: Path, cli: Cli) -> None:
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    from tests.badfiles import font

    src = tmp_path / "in"
    src.mkdir()
    # A letter-size page scanned at 100 dpi with 11-pt text: 850 x 1100 px, no dpi stored.
    im = Image.new("L", (850, 1100), 255)
    d = ImageDraw.Draw(im)
    for i in range(30):
        d.text((60, 60 + i * 32), "The quick brown fox jumps over the lazy dog", fill=0,
               font=font(15))  # fmt: skip
    im.save(src / "page.png")
    cli("run", str(src), *FAKE, "--format", "pdf", "--out", str(tmp_path / "o"), check=True)
    rec = json.loads((tmp_path / "o" / "results.jsonl").read_text())
    info = rec["page_results"][0]["info"]
    assert info["page_dpi_from"] == "letter height" and 80 <= info["page_dpi"] <= 130
    pdf = pdfium.PdfDocument(str(tmp_path / "o" / "pdf" / "page.png.pdf"))
    w_in = pdf[0].get_width() / 72
    pdf.close()
    assert 6.5 <= w_in <= 10.5  # about a letter page's 8.5 in, not 2.8 in at 300 dpi
    cli("run", str(src), *FAKE, "--format", "pdf", "--image-dpi", "200", "--force",
        "--out", str(tmp_path / "o2"), check=True)  # fmt: skip
    pdf = pdfium.PdfDocument(str(tmp_path / "o2" / "pdf" / "page.png.pdf"))
    assert pdf[0].get_width() == pytest.approx(850 / 200 * 72, abs=0.5)
    pdf.close()


# -- 14. output names as the README says them ---------------------------------------------


def test_output_names_match_the_readme(tmp_path: Path, cli: Cli) -> None:
    src = _pngs(tmp_path / "in", ["a.png"])
    cli("run", str(src), *FAKE, "--format", "txt,hocr,alto,pdf", "--out", str(tmp_path / "o"),
        check=True)  # fmt: skip
    names = sorted(str(p.relative_to(tmp_path / "o")) for p in (tmp_path / "o").rglob("a.png.*"))
    assert names == ["alto/a.png.xml", "hocr/a.png.hocr", "pdf/a.png.pdf", "text/a.png.txt"]
    readme = (REPO / "README.md").read_text()
    for n in names:
        assert n.replace("a.png", "scan.png") in readme, n


def test_ctrl_c_pauses_writes_partial_results_and_says_how_to_continue(tmp_path: Path) -> None:
    import signal

    from ocrbatch.store import Store
    from tests.conftest import wait_until

    src = _pngs(tmp_path / "in", [f"p{i:02}.png" for i in range(30)])
    db = f"sqlite:///{tmp_path / 'own.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocrbatch", "--progress", "none", "run", str(src), *FAKE,
         "--engine-opt", "delay=0.3", "-o", str(tmp_path / "out"), "--db", db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def some_done() -> bool:
        try:
            with Store(db) as st:
                return st.get_job(1).processed_pages >= 2
        except Exception:
            return False

    wait_until(some_done, 120, "2 pages done")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert f"paused: continue with `ocrbatch resume 1 --db {db}`" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["partial"] is True and summary["status"] == "paused"
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 30  # every document, the ones not done yet as pending
    done = [json.loads(x) for x in lines if json.loads(x)["status"] == "completed"]
    assert 2 <= len(done) < 30
