"""Text detection: batched DB (differentiable binarization) on pages of any size.

Pages are resized on the device so their longer side is ``side`` (both sides rounded to
multiples of 32, as the network needs), padded white to the batch's largest size and
run as one batch. The probability map is thresholded and dilated on the device; only
the 1-byte mask comes back for contour finding (OpenCV), which is the one sequential
step. Unclipping and box scoring are vectorized: a rectangle offset by ``d`` with round
joins has the minimum-area rectangle of the rectangle grown by ``d`` on each side (what
pyclipper + minAreaRect compute one by one in PaddleOCR), and box scores are the mean
probability sampled over each box, for all boxes of the batch in one ``grid_sample``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DbParams",
    "det_batch",
    "detect_boxes",
    "find_quads",
    "mask_and_prob",
    "order_corners",
    "rect_corners",
    "sample_quads",
    "unclip",
]


@dataclass(frozen=True, slots=True)
class DbParams:
    """PaddleOCR's DB post-processing settings (RapidOCR's defaults)."""

    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    max_candidates: int = 1000
    min_size: float = 3.0


def _det_size(h: int, w: int, side: int) -> tuple[int, int]:
    r = side / max(h, w)
    return max(32, round(h * r / 32) * 32), max(32, round(w * r / 32) * 32)


def det_batch(
    pages: Sequence[torch.Tensor], side: int, dtype: torch.dtype
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Normalized detector input [B,3,H,W] for uint8 pages [C,h,w] already on the device,
    and each page's (height, width) inside the padded batch."""
    sizes = [_det_size(int(p.shape[1]), int(p.shape[2]), side) for p in pages]
    hmax, wmax = max(s[0] for s in sizes), max(s[1] for s in sizes)
    device = pages[0].device
    batch = torch.full((len(pages), 3, hmax, wmax), 1.0, dtype=dtype, device=device)
    for i, (p, (h, w)) in enumerate(zip(pages, sizes, strict=True)):
        x = p.unsqueeze(0).to(torch.float32)
        shrink = h < p.shape[1] or w < p.shape[2]
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
        batch[i, :, :h, :w] = (x[0] / 127.5 - 1.0).to(dtype)  # (x/255 - 0.5) / 0.5
    return batch, sizes


def mask_and_prob(prob: torch.Tensor, thresh: float) -> tuple[np.ndarray, torch.Tensor]:
    """Binary text mask [B,H,W] (uint8, on the CPU) from the detector's map [B,1,H,W]:
    threshold, then the 2x2 dilation PaddleOCR applies (anchor at the kernel centre)."""
    m = (prob > thresh).to(torch.float16 if prob.is_cuda else torch.float32)
    m = F.max_pool2d(F.pad(m, (1, 0, 1, 0)), kernel_size=2, stride=1)
    return m[:, 0].to(torch.uint8).cpu().numpy(), prob[:, 0].float()


def find_quads(
    mask: np.ndarray, sizes: Sequence[tuple[int, int]], params: DbParams
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-area rectangles of the mask's contours: (centre x, centre y, width, height,
    angle in degrees) [N,5] in detector pixels, and the page index of each [N]."""
    import cv2

    rects: list[tuple[float, float, float, float, float]] = []
    pages: list[int] = []
    for i, (h, w) in enumerate(sizes):
        contours, _ = cv2.findContours(mask[i, :h, :w], cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours[: params.max_candidates]:
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
            rects.append((cx, cy, rw, rh, angle))
            pages.append(i)
    if not rects:
        return np.zeros((0, 5), np.float32), np.zeros((0,), np.int64)
    return np.asarray(rects, np.float32), np.asarray(pages, np.int64)


def rect_corners(rects: np.ndarray) -> np.ndarray:
    """[N,5] rectangles -> [N,4,2] corners ordered tl, tr, br, bl (as in PaddleOCR)."""
    cx, cy, w, h, a = (rects[:, k] for k in range(5))
    t = np.deg2rad(a)
    c, s = np.cos(t), np.sin(t)
    dx = np.stack([-w, w, w, -w], 1) / 2
    dy = np.stack([-h, -h, h, h], 1) / 2
    pts = np.stack(
        [
            cx[:, None] + dx * c[:, None] - dy * s[:, None],
            cy[:, None] + dx * s[:, None] + dy * c[:, None],
        ],
        -1,
    )
    return order_corners(pts.astype(np.float32))


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Order each quad's corners tl, tr, br, bl: the two leftmost points are the left
    side (upper one first), the two rightmost the right side (PaddleOCR's rule)."""
    idx = np.argsort(pts[:, :, 0], axis=1, kind="stable")
    srt = np.take_along_axis(pts, idx[:, :, None], axis=1)
    left, right = srt[:, :2], srt[:, 2:]
    lo = np.argsort(left[:, :, 1], axis=1, kind="stable")
    ro = np.argsort(right[:, :, 1], axis=1, kind="stable")
    left = np.take_along_axis(left, lo[:, :, None], axis=1)
    right = np.take_along_axis(right, ro[:, :, None], axis=1)
    return np.stack([left[:, 0], right[:, 0], right[:, 1], left[:, 1]], 1)


def unclip(rects: np.ndarray, ratio: float) -> np.ndarray:
    """Grow each rectangle by d = area * ratio / perimeter on every side."""
    w, h = rects[:, 2], rects[:, 3]
    d = w * h * ratio / np.maximum(2 * (w + h), 1e-6)
    out = rects.copy()
    out[:, 2] = w + 2 * d
    out[:, 3] = h + 2 * d
    return out


def sample_quads(
    images: torch.Tensor, quads: torch.Tensor, page: torch.Tensor, out_h: int, out_w: int
) -> torch.Tensor:
    """Bilinear samples of ``images`` over quads [N,4,2] (pixel corners tl, tr, br, bl in
    the images' own coordinates): [N,C,out_h,out_w]. ``images`` is [B,C,H,W], or already
    the volume [1,C,B,H,W] (which saves a copy when it is sampled many times).

    One call for all quads of the batch: the pages become the depth axis of a 3-D
    ``grid_sample`` and each quad samples exactly at its page's depth.
    """
    vol = images if images.dim() == 5 else images.permute(1, 0, 2, 3).unsqueeze(0)
    n = quads.shape[0]
    b, hh, ww = vol.shape[2], vol.shape[3], vol.shape[4]
    dev, dt = vol.device, vol.dtype
    u = (torch.arange(out_w, device=dev, dtype=torch.float32) + 0.5) / out_w
    v = (torch.arange(out_h, device=dev, dtype=torch.float32) + 0.5) / out_h
    tl, tr, br, bl = (quads[:, k].float()[:, None, None, :] for k in range(4))
    uu, vv = u[None, None, :, None], v[None, :, None, None]
    top = tl + (tr - tl) * uu
    bottom = bl + (br - bl) * uu
    pts = top + (bottom - top) * vv  # [N,out_h,out_w,2] pixel coordinates
    # Pixel-centre coordinates (OpenCV's): pixel i spans [i - 0.5, i + 0.5].
    gx = (pts[..., 0] + 0.5) * (2.0 / ww) - 1.0
    gy = (pts[..., 1] + 0.5) * (2.0 / hh) - 1.0
    gz = ((page.float() * 2 + 1) / b - 1.0)[:, None, None].expand(n, out_h, out_w)
    grid = torch.stack([gx, gy, gz], -1).unsqueeze(0).to(dt)  # [1,N,oh,ow,3]
    out = F.grid_sample(vol, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0].permute(1, 0, 2, 3)  # [N,C,oh,ow]


def detect_boxes(
    prob: torch.Tensor, mask: np.ndarray, sizes: Sequence[tuple[int, int]], params: DbParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DB post-processing for one batch. Returns quads [N,4,2] in detector pixels, their
    page index [N] and score [N], after PaddleOCR's size and score filters."""
    rects, pages = find_quads(mask, sizes, params)
    keep = np.minimum(rects[:, 2], rects[:, 3]) >= params.min_size
    rects, pages = rects[keep], pages[keep]
    if len(rects) == 0:
        empty = np.zeros((0,), np.float32)
        return np.zeros((0, 4, 2), np.float32), pages, empty
    corners = rect_corners(rects)
    dev = prob.device
    # The box score: mean probability inside the box (PaddleOCR's "fast" score mode).
    samples = sample_quads(
        prob[:, None], torch.from_numpy(corners).to(dev), torch.from_numpy(pages).to(dev), 8, 32
    )
    scores = samples.mean(dim=(1, 2, 3)).cpu().numpy()
    keep = scores >= params.box_thresh
    grown = unclip(rects[keep], params.unclip_ratio)
    ok = np.minimum(grown[:, 2], grown[:, 3]) >= params.min_size + 2
    return rect_corners(grown[ok]), pages[keep][ok], scores[keep][ok]
