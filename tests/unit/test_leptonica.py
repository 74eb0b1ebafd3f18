"""Leptonica's stderr messages are off in processes that run Tesseract, unless asked for."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = r"""
import ctypes
from pathlib import Path
import tesserocr
from ocrbatch.engines.tesseract import TesseractEngine
engine = TesseractEngine({})
engine.open()
libs = Path(tesserocr.__file__).resolve().parent.parent / "tesserocr.libs"
lib = next(libs.glob("libleptonica*.so*"))
print(ctypes.CDLL(str(lib)).setMsgSeverity(5))  # returns the threshold in force
engine.close()
"""


@pytest.mark.parametrize(("env", "severity"), [("0", 6), ("1", 5)])
def test_engine_silences_leptonica_unless_asked(env: str, severity: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**os.environ, "OCRBATCH_LEPTONICA_MESSAGES": env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # 6 is leptonica's L_SEVERITY_NONE; 5 (L_SEVERITY_ERROR) is its default.
    assert int(proc.stdout.strip().splitlines()[-1]) == severity
