"""The console entry starts the pool's forkserver, with the engine's libraries, before
the CLI is imported, for the commands that read pages here, and only for those."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocrbatch.console import pool_engine


@pytest.mark.parametrize(
    ("args", "engine"),
    [
        (["run", "scans/", "-o", "out"], ""),
        (["--progress", "none", "run", "scans/", "--engine", "rapidocr"], "rapidocr"),
        (["run", "scans/", "--engine=auto"], "auto"),
        (["resume", "3", "--db", "sqlite:///x.db"], ""),
        (["retry-failed", "3"], ""),
        (["watch", "in/", "-o", "out"], ""),
        (["run", "scans/", "--mode", "sequential"], ""),  # a supervised 1-worker pool
        (["run", "scans/", "--mode", "distributed"], None),  # Ray's workers, not ours
        (["run", "scans/", "--mode=distributed"], None),
        (["run", "--help"], None),
        (["jobs"], None),
        (["status", "3"], None),
        (["serve"], None),
        ([], None),
    ],
)
def test_which_commands_start_the_forkserver_early(args: list[str], engine: str | None) -> None:
    assert pool_engine(args) == engine


PROBE = """
import gc, multiprocessing, sys
from ocrbatch.executors import forkserver

def loaded(q):
    q.put(sorted(m for m in ("ocrbatch.pipeline", "ocrbatch.engines.tesseract", "tesserocr",
                             "sqlalchemy", "typer") if m in sys.modules)
          + ["frozen"] * (gc.get_freeze_count() > 1000)  # the server's imports (warm.py)
          + ["opened"] * (getattr(sys.modules.get("ocrbatch.pipeline"), "_forked_engine", None)
                          is not None))  # the engine opened before the fork

if __name__ == "__main__":
    ctx = forkserver.start(sys.argv[1])
    assert "ocrbatch.pipeline" not in sys.modules  # the caller imported nothing heavy
    q = ctx.Queue()
    p = ctx.Process(target=loaded, args=(q,))
    p.start()
    print(" ".join(q.get(timeout=60)))
    p.join()
"""


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        ("tesseract", "ocrbatch.engines.tesseract ocrbatch.pipeline tesserocr frozen opened"),
        ("", "ocrbatch.pipeline frozen"),  # a queue worker: each task brings its own engine
        ("no-such-engine", "ocrbatch.pipeline frozen"),  # the command reports it; the server lives
    ],
)
def test_workers_fork_with_the_engine_loaded_and_never_the_cli(
    tmp_path: Path, engine: str, expected: str
) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    out = subprocess.run(
        [sys.executable, str(script), engine],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == expected.split()


EXIT_PROBE = """
import atexit, gc, sys
from ocrbatch import console
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 1000))
sys.argv = ["ocrbatch", *sys.argv[1:]]
console.main()
"""


@pytest.mark.parametrize("args", [["jobs", "--help"], ["status", "999999", "--db", "DB"]])
def test_the_entry_exits_without_the_final_collections(tmp_path: Path, args: list[str]) -> None:
    """After the command (its exit code kept, a failing one too), what the CLI loaded is
    frozen: the interpreter's exit does not collect it (console._skip_final_collections)."""
    script = tmp_path / "probe.py"
    script.write_text(EXIT_PROBE)
    args = [a.replace("DB", f"sqlite:///{tmp_path / 'x.db'}") for a in args]
    out = subprocess.run(
        [sys.executable, str(script), *args], check=False, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.stdout.strip().endswith("frozen at exit: True"), out.stdout + out.stderr
    assert (out.returncode == 0) == (args[0] == "jobs"), out.stderr
