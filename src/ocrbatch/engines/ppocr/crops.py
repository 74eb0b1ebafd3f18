"""Line crops for the recogniser, cut on the device and batched by width.

Each text quad is sampled straight to the recogniser's height (48 px) at its own aspect
ratio (one bilinear ``grid_sample`` per width bucket, for all pages of a batch), so no
crop ever exists at page resolution. Quads at least 1.5 times taller than wide are read
turned a quarter (as PaddleOCR does). Crops are grouped by width into batches whose
padded width is the widest crop in it, with PaddleOCR's 320-px minimum; the padding is
0 in normalized space, as in PaddleOCR.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .detection import sample_quads

__all__ = ["REC_HEIGHT", "CropPlan", "crop_batches", "plan_crops"]

REC_HEIGHT = 48
_MIN_WIDTH = 320
_MAX_WIDTH = 3200  # ~67 characters of height 48: a longer "line" is a detection error


@dataclass(frozen=True, slots=True)
class CropPlan:
    """How each quad is read: ``quads`` [N,4,2] reordered for reading direction, the
    resized width of each crop [N] (before padding)."""

    quads: np.ndarray
    widths: np.ndarray


def plan_crops(quads: np.ndarray) -> CropPlan:
    """Reading direction and target width of each quad (tl, tr, br, bl corners)."""
    q = quads.astype(np.float32)
    w = np.maximum(
        np.linalg.norm(q[:, 0] - q[:, 1], axis=1), np.linalg.norm(q[:, 2] - q[:, 3], axis=1)
    )
    h = np.maximum(
        np.linalg.norm(q[:, 0] - q[:, 3], axis=1), np.linalg.norm(q[:, 1] - q[:, 2], axis=1)
    )
    tall = h >= 1.5 * np.maximum(w, 1e-6)
    # np.rot90 of a crop turns it counter-clockwise: its top-right corner becomes top-left.
    q[tall] = q[tall][:, [1, 2, 3, 0]]
    w, h = np.where(tall, h, w), np.where(tall, w, h)
    ratio = w / np.maximum(h, 1.0)
    widths = np.clip(np.ceil(REC_HEIGHT * ratio), 1, _MAX_WIDTH).astype(np.int64)
    return CropPlan(q, widths)


def crop_batches(
    pages: torch.Tensor,
    page_index: np.ndarray,
    plan: CropPlan,
    max_columns: int,
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Normalized crop batches [n,3,48,W] with the indices (into the plan) of their rows.

    ``pages`` is the batch of work images ([B,C,H,W] or the volume [1,C,B,H,W]) in the
    model dtype, already normalized to [-1, 1]; ``max_columns`` bounds n * W per batch
    (the memory budget).
    """
    order = np.argsort(plan.widths, kind="stable")
    dev = pages.device
    start = 0
    while start < len(order):
        end = start + 1
        width = _padded(int(plan.widths[order[start]]))
        while end < len(order):
            nxt = _padded(int(plan.widths[order[end]]))
            if (end - start + 1) * nxt > max_columns:
                break
            width = nxt
            end += 1
        rows = order[start:end]
        quads = torch.from_numpy(plan.quads[rows]).to(dev)
        idx = torch.from_numpy(page_index[rows]).to(dev)
        crops = _sample(pages, quads, idx, plan.widths[rows], width)
        yield rows, crops
        start = end


def _padded(width: int) -> int:
    return max(_MIN_WIDTH, math.ceil(width / 32) * 32)


def _sample(
    pages: torch.Tensor, quads: torch.Tensor, idx: torch.Tensor, widths: np.ndarray, width: int
) -> torch.Tensor:
    """Sample every quad at its own width inside a ``width``-wide canvas, padding 0."""
    # Stretch each quad's right edge so that its own width maps onto ``width`` columns,
    # then blank the columns past its own width: one grid_sample for the whole batch.
    w = torch.from_numpy(widths.astype(np.float32)).to(quads.device)
    f = (width / w)[:, None]
    tl, tr, br, bl = (quads[:, k] for k in range(4))
    wide = torch.stack([tl, tl + (tr - tl) * f, bl + (br - bl) * f, bl], 1)
    crops = sample_quads(pages, wide, idx, REC_HEIGHT, width)
    if crops.shape[1] == 1:
        crops = crops.expand(-1, 3, -1, -1)
    cols = torch.arange(width, device=crops.device)[None, :] < w.to(crops.device)[:, None]
    return crops * cols[:, None, None, :].to(crops.dtype)
