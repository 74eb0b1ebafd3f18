"""results.jsonl: one JSON record per document, a line each (streamed)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .atomic import atomic_writer
from .records import Outputs, Raw, document_record

__all__ = ["write_jsonl"]


def write_jsonl(docs: Iterable[Raw], out: Path, outputs: Outputs) -> Path:
    path = out / "results.jsonl"
    with atomic_writer(path) as f:
        for d in docs:
            rec = document_record(d)
            rec["outputs"] = outputs(d)
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path
