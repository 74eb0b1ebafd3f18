"""The small languages of the command line: page ranges (``--pages 1-5,10,20-``) and
preprocessing specs (``--preprocess auto,-binarize``). Pure parsing, no I/O."""

from __future__ import annotations

__all__ = ["PREPROCESS_STEPS", "parse_pages", "parse_preprocess", "select_pages"]

# The preprocessing steps, in the order they run (ocrbatch.preprocess implements them).
PREPROCESS_STEPS = (
    "grayscale",
    "crop",
    "orientation",
    "deskew",
    "denoise",
    "upscale",
    "binarize",
)


def parse_preprocess(spec: str) -> tuple[str, tuple[str, ...]]:
    """``auto`` | ``off`` | a comma list of steps -> (mode, steps) in canonical order.

    ``auto`` checks each page and runs only the steps it needs, out of all steps or out
    of those left after ``-step`` exclusions (``auto,-binarize``); a plain list runs
    exactly those steps on every page; ``off`` runs none.
    """
    items = [x.strip().lower() for x in spec.split(",") if x.strip()]
    if not items:
        raise ValueError("empty --preprocess (use auto, off or a list of steps)")
    auto = "auto" in items
    if items == ["off"]:
        return "off", ()
    named = [x for x in items if x != "auto"]
    for x in named:
        step = x.removeprefix("-")
        if step not in PREPROCESS_STEPS:
            raise ValueError(
                f"unknown preprocessing step {step!r} (steps: {', '.join(PREPROCESS_STEPS)};"
                " or auto, off)"
            )
        if x.startswith("-") and not auto:
            raise ValueError(f"{x!r} only makes sense after auto (e.g. auto,{x})")
        if not x.startswith("-") and auto:
            raise ValueError(f"auto already considers {x!r}; list steps without auto to force them")
    if auto:
        dropped = {x[1:] for x in named}
        return "auto", tuple(s for s in PREPROCESS_STEPS if s not in dropped)
    return "fixed", tuple(s for s in PREPROCESS_STEPS if s in named)


def parse_pages(spec: str) -> tuple[tuple[int, int | None], ...]:
    """``1-5,10,20-`` -> 1-based inclusive ranges (None: to the last page)."""
    out: list[tuple[int, int | None]] = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first = int(lo) if lo.strip() else 1
            last = (int(hi) if hi.strip() else None) if dash else first
        except ValueError:
            raise ValueError(f"bad page range {part!r} (expected e.g. 1-5,10,20-)") from None
        if first < 1 or (last is not None and last < first):
            raise ValueError(f"bad page range {part!r} (pages count from 1, low-high)")
        out.append((first, last))
    if not out:
        raise ValueError("empty --pages")
    return tuple(out)


def select_pages(spec: str | None, page_count: int) -> tuple[int, ...]:
    """0-based indexes of the pages of a ``page_count``-page document that ``spec`` picks,
    in order, each once (pages past the end are ignored)."""
    if spec is None:
        return tuple(range(page_count))
    chosen: set[int] = set()
    for first, last in parse_pages(spec):
        end = page_count if last is None else min(last, page_count)
        chosen.update(range(first - 1, end))
    return tuple(sorted(chosen))
