"""Commands that look: accuracy of a job against ground truth, installed engines."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from .. import service
from .app import app, err, num, out
from .options import DbOpt, JobArg

__all__: list[str] = []


@app.command("eval")
def eval_job(
    job: JobArg,
    ground_truth: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="Folder of <name>.gt.txt files mirroring the inputs [default: the "
            "job's; <name>.gt.txt beside each input is always looked for].",
        ),
    ] = None,
    casefold: Annotated[
        bool | None,
        typer.Option(
            "--casefold/--no-casefold",
            metavar="",
            help="Compare case-insensitively, or not [default: the job's].",
            show_default=False,
        ),
    ] = None,
    ignore_chars: Annotated[
        str | None,
        typer.Option(
            metavar="CHARS",
            help="Characters dropped from both sides before scoring, e.g. '~' "
            "[default: the job's].",
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            metavar="RATE", min=0, max=1, help="List pages under this confidence (0..1) for review."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="JSON output (for scripts).")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Accuracy of a job against ground truth: a table per source folder.

    The scores are recorded on the job's pages; `export` scores again with the job's own
    settings (those of `run`) before it writes the results.
    """
    d = service.evaluate(
        job,
        db=db,
        ground_truth=ground_truth,
        casefold=casefold,
        ignore_chars=ignore_chars,
        min_confidence=min_confidence,
    )
    if as_json:
        out.print_json(json.dumps(d))
        return
    acc, review = d["accuracy"], d["review"]
    if acc is None:
        err.print(
            f"no ground truth found for job {d['job']} (looked for <name>.gt.txt beside "
            "each input, and under --ground-truth DIR if given)"
        )
        raise typer.Exit(1)
    norm = acc["normalization"]
    # An engine that routes pages (--engine auto) says how many took each route.
    routed = "routes" in acc
    t = Table(
        "folder",
        "docs",
        "pages",
        "CER",
        "WER",
        "bag-of-words",
        "confidence",
        "review",
        *(["routes"] if routed else []),
        title=f"job {d['job']} ({d['name']}): accuracy, casefold={norm['casefold']}"
        + (f", ignoring {norm['ignore_chars']!r}" if norm["ignore_chars"] else ""),
    )
    rows = [*acc["by_folder"].items(), ("all", acc)]
    for name, f in rows:
        if not f["documents"]:
            continue
        routes = ", ".join(f"{k} {v}" for k, v in f.get("routes", {}).items())
        t.add_row(
            name,
            str(f["documents"]),
            str(f["pages"]),
            f"{f['cer']:.4f}",
            f"{f['wer']:.4f}",
            f"{f['bow']:.4f}",
            num(f["mean_confidence"]),
            str(f["review_pages"]),
            *([routes] if routed else []),
            end_section=name == rows[-2][0],
        )
    out.print(t)
    if review and review["pages"]:
        out.print(f"{review['pages']} pages under confidence {review['min_confidence']}:")
        for r in review["listed"]:
            out.print(f"  {r['path']} page {r['page']} ({r['confidence']:.3f})")


@app.command()
def engines(
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="JSON output (for scripts).")
    ] = False,
    all_: Annotated[
        bool,
        typer.Option("--all", metavar="", help="Also the stand-in engines for tests (fake...)."),
    ] = False,
) -> None:
    """The installed OCR engines (entry-point group ocrbatch.engines)."""
    from ..engines import engine_listing

    rows = [e for e in engine_listing() if all_ or not e.for_tests]
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "package": e.source,
                        "version": e.info.version if e.info else None,
                        "languages": list(e.info.languages) if e.info else [],
                        "device": e.info.device if e.info else None,
                        "error": e.error,
                    }
                    for e in rows
                ]
            )
        )
        return
    t = Table("engine", "version", "languages", "device", "package")
    for e in rows:
        if e.info is None:
            t.add_row(e.name, "-", "-", f"unavailable: {e.error}", e.source)
        else:
            langs = ", ".join(e.info.languages)
            t.add_row(e.name, e.info.version, langs, e.info.device, e.source)
    out.print(t)
