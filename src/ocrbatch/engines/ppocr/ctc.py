"""CTC greedy decoding: best class per time step, repeats and blanks dropped.

The argmax and max run on the device (the [N,T,6625] scores never leave it); the
repeat/blank mask is one vectorized step over the whole batch; only the characters and
their time steps go to Python strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Decoded", "charset_from_metadata", "ctc_greedy"]


@dataclass(frozen=True, slots=True)
class Decoded:
    """One line: its characters, each one's probability and time step, and the number of
    time steps of its (padded) input."""

    text: str
    probs: np.ndarray
    steps: np.ndarray
    length: int


def charset_from_metadata(character: str) -> list[str]:
    """PaddleOCR's class list: blank, the dictionary (one entry a line), then space."""
    return ["", *character.splitlines(), " "]


def ctc_greedy(scores: torch.Tensor, charset: Sequence[str]) -> list[Decoded]:
    """Decode softmax scores [N,T,C] (class 0 = blank)."""
    prob, idx = scores.max(dim=2)
    keep = idx != 0
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    idx_np = idx.cpu().numpy()
    prob_np = prob.float().cpu().numpy()
    keep_np = keep.cpu().numpy()
    table = np.asarray(charset, dtype=object)
    out: list[Decoded] = []
    length = int(scores.shape[1])
    for i in range(idx_np.shape[0]):
        steps = np.flatnonzero(keep_np[i])
        chars = table[idx_np[i, steps]]
        out.append(Decoded("".join(chars), prob_np[i, steps], steps, length))
    return out
