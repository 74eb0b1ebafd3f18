"""Commands that look: accuracy of a job against ground truth, installed engines."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from .. import service
from .app import (
    DbOpt,
    GroundTruthOpt,
    JobArg,
    MinConfidenceOpt,
    app,
    err,
    num,
    out,
)

__all__: list[str] = []


@app.command("eval")
def eval_job(
    job: JobArg,
    ground_truth: GroundTruthOpt = None,
    casefold: Annotated[
        bool | None, typer.Option("--casefold/--no-casefold", help="[default: the job's]")
    ] = None,
    ignore_chars: Annotated[str | None, typer.Option(help="[default: the job's]")] = None,
    min_confidence: MinConfidenceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
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
    t = Table(
        "folder", "docs", "pages", "CER", "WER", "bag-of-words", "confidence", "review",
        title=f"job {d['job']} ({d['name']}): accuracy, casefold={norm['casefold']}"
        + (f", ignoring {norm['ignore_chars']!r}" if norm["ignore_chars"] else ""),
    )  # fmt: skip
    rows = [*acc["by_folder"].items(), ("all", acc)]
    for name, f in rows:
        if not f["documents"]:
            continue
        t.add_row(
            name, str(f["documents"]), str(f["pages"]),
            f"{f['cer']:.4f}", f"{f['wer']:.4f}", f"{f['bow']:.4f}",
            num(f["mean_confidence"]), str(f["review_pages"]),
            end_section=name == rows[-2][0],
        )  # fmt: skip
    out.print(t)
    if review and review["pages"]:
        out.print(f"{review['pages']} pages under confidence {review['min_confidence']}:")
        for r in review["listed"]:
            out.print(f"  {r['path']} page {r['page']} ({r['confidence']:.3f})")


@app.command()
def engines(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """The installed OCR engines (entry-point group ocrbatch.engines)."""
    from ..engines import engine_listing

    rows = engine_listing()
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
