"""The ``auto`` engine: each page read by the engine that suits it, Tesseract or PP-OCR.

PP-OCR (RapidOCR on the CPU, ppocr-torch on a CUDA machine) reads receipts, forms and
born-digital papers with a third of Tesseract's errors, but costs several times as much
on the CPU; on clean printed pages with large letters Tesseract is as accurate and
faster. So each page goes one way, decided from what the page shows:

1. the quality check (:mod:`ocrbatch.preprocess.quality`, tens of milliseconds): a page
   whose letters are small, or that is noisy or dim, goes to PP-OCR;
2. any other page is read by Tesseract first, and kept if Tesseract is sure of it (its
   mean word confidence); else PP-OCR reads it again and its reading is kept.

The rules (:class:`RouteRules`) were chosen on the dev corpus with each source held out
in turn (``bench/routing.py``; README, "The auto engine"). Each page's route and why
come back in :attr:`PageText.info` (``route``, ``route_reason``, ``route_features``),
which the pipeline puts in the page's info (results.jsonl, ``ocrbatch eval``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..config import AutoEngineOptions
from ..errors import ConfigError, EngineError
from ..model import PageTask, PageText
from .base import Engine, EngineBase, EngineInfo, engine_class

__all__ = [
    "AutoEngine",
    "PageFeatures",
    "Route",
    "RouteRules",
    "choose_route",
    "page_features",
    "ppocr_candidates",
    "ppocr_engine_name",
    "ppocr_scale",
    "resolve_ppocr",
]


@dataclass(frozen=True, slots=True)
class PageFeatures:
    """What the route is decided from: the quality check of the page as it reaches the
    engine (after preprocessing), and Tesseract's confidence once it has read it."""

    letter_height: float  # median height of letter-like components, pixels
    speckle: float  # share of 1-2 px ink specks
    contrast: float  # (99th - 1st percentile of grey) / 255
    tesseract_confidence: float | None = None

    def as_dict(self) -> dict[str, float]:
        d = {k: round(float(v), 3) for k, v in dataclasses.asdict(self).items() if v is not None}
        return d


@dataclass(frozen=True, slots=True)
class RouteRules:
    """Thresholds of :func:`choose_route` (see the module docstring); the defaults are
    the auto engine's options' (:meth:`default`)."""

    min_letter_height: float
    max_speckle: float
    min_contrast: float
    min_tesseract_confidence: float

    @classmethod
    def of(cls, options: AutoEngineOptions) -> RouteRules:
        return cls(
            options.min_letter_height,
            options.max_speckle,
            options.min_contrast,
            options.min_tesseract_confidence,
        )

    @classmethod
    def default(cls) -> RouteRules:
        return cls.of(AutoEngineOptions())


@dataclass(frozen=True, slots=True)
class Route:
    """Where a page goes: ``tesseract`` or ``ppocr``, and why (one line)."""

    engine: str
    reason: str


def page_features(image: Any) -> PageFeatures:
    """The quality check's measures of a PIL page (no skew search: not needed here)."""
    from ..preprocess.quality import measure

    grey = np.asarray(image.convert("L"))
    q = measure(grey, skew=False)
    return PageFeatures(q.char_height, q.speckle, q.contrast)


def choose_route(f: PageFeatures, rules: RouteRules) -> Route:
    """The route of a page with features ``f``: before Tesseract has read it
    (``tesseract_confidence`` None: ``tesseract`` means "read with Tesseract first"), or
    after, when Tesseract's confidence decides whether PP-OCR reads it again."""
    if 0 < f.letter_height < rules.min_letter_height:
        return Route("ppocr", f"letters {f.letter_height:.0f} px < {rules.min_letter_height:g}")
    if f.letter_height == 0:
        return Route("ppocr", "no letters found by the quality check")
    if f.speckle > rules.max_speckle:
        return Route("ppocr", f"speckle {f.speckle:.2f} > {rules.max_speckle:g}")
    if f.contrast < rules.min_contrast:
        return Route("ppocr", f"contrast {f.contrast:.2f} < {rules.min_contrast:g}")
    if f.tesseract_confidence is None:
        return Route("tesseract", f"clean print, letters {f.letter_height:.0f} px")
    if f.tesseract_confidence < rules.min_tesseract_confidence:
        return Route(
            "ppocr",
            f"Tesseract confidence {f.tesseract_confidence:.2f} "
            f"< {rules.min_tesseract_confidence:g}",
        )
    return Route(
        "tesseract",
        f"clean print, letters {f.letter_height:.0f} px, "
        f"Tesseract confidence {f.tesseract_confidence:.2f}",
    )


def ppocr_scale(f: PageFeatures, letter_height: float, min_scale: float) -> float:
    """How much to shrink a page before PP-OCR reads it: to letters of ``letter_height``
    pixels, by at most ``min_scale`` (1: not at all). Measured on the dev corpus (README,
    "The auto engine"): forms read at 10-px letters as well as at 12 (what preprocessing
    enlarges them to) in three quarters of the time, papers as well as at 13-15."""
    if letter_height <= 0 or f.letter_height <= letter_height:
        return 1.0
    return max(min_scale, letter_height / f.letter_height)


def _shrunk(image: Any, scale: float) -> Any:
    from PIL import Image

    src = image.convert("L") if image.mode == "1" else image  # bilevel art: resize in grey
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    out = src.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    dpi = image.info.get("dpi")
    if dpi:
        d = float(dpi[0] if isinstance(dpi, tuple) else dpi) * scale
        out.info["dpi"] = (d, d)
    return out


def ppocr_engine_name(choice: str) -> str:
    """The PP-OCR engine for ``choice``: ``auto`` is ppocr-torch where torch sees a CUDA
    device, RapidOCR (on the CPU) everywhere else."""
    return ppocr_candidates(choice)[0]


def ppocr_candidates(choice: str) -> list[str]:
    """The PP-OCR engines to try for ``choice``, best first: ``auto`` falls back from
    ppocr-torch (CUDA) to RapidOCR when the first cannot run."""
    if choice != "auto":
        return [choice]
    if importlib.util.find_spec("torch") is None:
        return ["rapidocr"]
    import torch

    return ["ppocr-torch", "rapidocr"] if torch.cuda.is_available() else ["rapidocr"]


def resolve_ppocr(choice: str, options: Mapping[str, Any]) -> tuple[str | None, str]:
    """(the PP-OCR engine that can run here, or None; why the others cannot). An engine
    named explicitly that cannot run is a ConfigError; ``auto`` tells it in the reason."""
    problems = []
    for name in ppocr_candidates(choice):
        try:
            engine_class(name).check(options)
        except ConfigError as exc:
            if choice != "auto":
                raise
            problems.append(f"{name}: {exc.message}")
            continue
        return name, "; ".join(problems)
    return None, "; ".join(problems)


class AutoEngine(EngineBase):
    """Per-page routing between Tesseract and PP-OCR (see the module docstring)."""

    name: ClassVar[str] = "auto"
    options_model: ClassVar[type[AutoEngineOptions]] = AutoEngineOptions
    # Tesseract (400 MB) and RapidOCR (700 MB) in one worker.
    memory_per_worker_mb: ClassVar[int] = 1100
    preload: ClassVar[tuple[str, ...]] = ("tesserocr", "rapidocr")

    def __init__(
        self, options: Mapping[str, Any], *, timeout: float | None = None, threads: int = 1
    ) -> None:
        self.options = AutoEngineOptions(**options)
        self.rules = RouteRules.of(self.options)
        self.timeout = timeout
        self.threads = threads
        self._tesseract: Engine | None = None
        self._ppocr: Engine | None = None
        self._ppocr_name: str | None = None
        self._ppocr_problem: str | None = None  # why PP-OCR cannot run here, once known

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        """Fail early, in the coordinator, if Tesseract cannot run, or the PP-OCR engine
        named in ``ppocr`` (with ``ppocr=auto``, pages that would go to PP-OCR are read
        by Tesseract when no PP-OCR engine can run, and their info says why)."""
        opts = AutoEngineOptions(**options)
        from .tesseract import TesseractEngine

        TesseractEngine.check(opts.tesseract)
        resolve_ppocr(opts.ppocr, opts.ppocr_options)

    @classmethod
    def info(cls) -> EngineInfo:
        from .tesseract import TesseractEngine

        t = TesseractEngine.info()
        name, _ = resolve_ppocr("auto", {})
        if name is None:
            return EngineInfo(cls.name, f"tesseract {t.version} (no PP-OCR)", t.languages, "cpu")
        pp = engine_class(name).info()
        version = f"tesseract {t.version} + {name} {pp.version}"
        return EngineInfo(cls.name, version, t.languages, pp.device)

    def _engine(self, route: str) -> Engine:
        """The engine of a route, built and opened on first use (once per worker)."""
        if route == "tesseract":
            if self._tesseract is None:
                self._tesseract = self._build("tesseract", self.options.tesseract)
            return self._tesseract
        if self._ppocr is None:
            if self._ppocr_name is None:
                raise EngineError(f"no PP-OCR engine can run: {self._ppocr_problem}")
            self._ppocr = self._build(self._ppocr_name, self.options.ppocr_options)
        return self._ppocr

    def ppocr_available(self) -> bool:
        """Whether a PP-OCR engine can run here (found out once per worker)."""
        if self._ppocr_name is None and self._ppocr_problem is None:
            o = self.options
            self._ppocr_name, self._ppocr_problem = resolve_ppocr(o.ppocr, o.ppocr_options)
        return self._ppocr_name is not None

    def _build(self, name: str, options: Mapping[str, Any]) -> Engine:
        engine = engine_class(name)(options, timeout=self.timeout, threads=self.threads)
        engine.open()
        return engine

    def open(self) -> None:
        # Tesseract opens in milliseconds and reads most clean pages: open it now; PP-OCR
        # opens with the first page that needs it (a job of clean books never loads it).
        self._engine("tesseract")

    def close(self) -> None:
        for engine in (self._tesseract, self._ppocr):
            if engine is not None:
                engine.close()
        self._tesseract = self._ppocr = None

    def recognize(self, image: Any, task: PageTask) -> PageText:
        forced = self.options.route
        if forced != "auto":
            page = self._engine(forced).recognize(image, task)
            return _with_route(page, Route(forced, "route forced by option"), None)
        features = page_features(image)
        route = choose_route(features, self.rules)
        if route.engine == "ppocr" and self.ppocr_available():
            return _with_route(self.read_ppocr(image, task, features), route, features)
        first = self._engine("tesseract").recognize(image, task)
        if route.engine == "ppocr":  # no PP-OCR here: Tesseract's reading, and why
            unavailable = f"{route.reason}, but PP-OCR cannot run ({self._ppocr_problem})"
            return _with_route(first, Route("tesseract", unavailable), features)
        features = dataclasses.replace(features, tesseract_confidence=first.confidence)
        route = choose_route(features, self.rules)
        if route.engine == "tesseract":
            return _with_route(first, route, features)
        if not self.ppocr_available():
            unavailable = f"{route.reason}, but PP-OCR cannot run ({self._ppocr_problem})"
            return _with_route(first, Route("tesseract", unavailable), features)
        page = self.read_ppocr(image, task, features)
        return _with_route(page, Route("tesseract+ppocr", route.reason), features)

    def read_ppocr(self, image: Any, task: PageTask, features: PageFeatures) -> PageText:
        """PP-OCR's reading of the page, shrunk first where its letters are large (see
        :func:`ppocr_scale`); words come back in the page's own pixels."""
        o = self.options
        scale = ppocr_scale(features, o.ppocr_letter_height, o.ppocr_min_scale)
        engine = self._engine("ppocr")
        if scale >= 1.0:
            return engine.recognize(image, task)
        from ..preprocess.geometry import to_original

        page = engine.recognize(_shrunk(image, scale), task)
        back = to_original(page, image.size, {"steps": ["upscale"], "upscale": scale})
        return dataclasses.replace(back, info={**page.info, "ppocr_scale": round(scale, 3)})


def _with_route(page: PageText, route: Route, features: PageFeatures | None) -> PageText:
    info: dict[str, Any] = {**page.info, "route": route.engine, "route_reason": route.reason}
    if features is not None:
        info["route_features"] = features.as_dict()
    return dataclasses.replace(page, info=info)
