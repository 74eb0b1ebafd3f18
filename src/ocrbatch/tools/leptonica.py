"""Leptonica's own messages, in the processes that run Tesseract through tesserocr.

Tesseract's layout analysis calls Leptonica, which prints lines such as "Error in
boxClipToRectangle: box outside rectangle" straight to the process's stderr on ordinary
pages: internal to the analysis (the page reads fine), they would garble the progress bar
and read like failures. ocrbatch reports each page's real errors itself, so the workers
set Leptonica's message threshold to none, in the copy of the library that tesserocr's
wheel bundles (its ``setMsgSeverity``). ``OCRBATCH_LEPTONICA_MESSAGES=1`` keeps them.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

__all__ = ["quiet"]

_L_SEVERITY_NONE = 6  # leptonica's environ.h: EXTERNAL 0, ALL 1, ... ERROR 5, NONE 6
_done = False


def quiet() -> None:
    """Silence Leptonica in this process (once; a no-op where the library is not found)."""
    global _done
    if _done or os.environ.get("OCRBATCH_LEPTONICA_MESSAGES") == "1":
        return
    _done = True
    import tesserocr

    libs = Path(tesserocr.__file__).resolve().parent.parent / "tesserocr.libs"
    for lib in sorted(libs.glob("libleptonica*.so*")):
        try:
            ctypes.CDLL(str(lib)).setMsgSeverity(_L_SEVERITY_NONE)
        except (OSError, AttributeError):
            continue
        return
