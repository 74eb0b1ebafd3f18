"""results.json: one JSON array of the documents' records, each with its pages' layout
(blocks, lines, words with boxes)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .atomic import atomic_writer
from .records import Outputs, Raw, document_record

__all__ = ["write_json"]


def write_json(docs: Iterable[Raw], out: Path, outputs: Outputs) -> Path:
    # Streamed: one record at a time, never the whole list in memory.
    path = out / "results.json"
    with atomic_writer(path) as f:
        f.write("[")
        for i, d in enumerate(docs):
            rec = document_record(d, layout=True)
            rec["outputs"] = outputs(d)
            f.write(",\n" if i else "\n")
            f.write(json.dumps(rec, ensure_ascii=False))
        f.write("\n]\n")
    return path
