"""Masks from clicks, and the one-object-per-pixel rule of video object segmentation (VOS).

* :func:`exclusive_masks`: several objects' mask probabilities to masks that
  share no pixel (a pixel goes to the most probable object above the
  threshold; masks given outright, such as prompts, take their pixels first).
* :func:`grow_from_points`: one click per object to a mask. The click's P2
  cell seeds a region of cells whose pixel embedding lies within
  ``point_threshold`` (FEELVOS distance) of the click's, connected to it;
  the dynamic segmentation head then refines that region on the same frame
  (global matching against the region's embeddings, the region as the
  previous mask and local matching against the frame itself), as if the
  region were the object's mask in a previous frame.

Coordinates: clicks are ``(x, y)`` in frame pixels (pixel ``i`` spans
``i .. i + 1``); masks are ``bool [H, W]`` of the frame size.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
from scipy import ndimage

from tubelets.models.ipdt import geometry
from tubelets.models.ipdt.model import IPDT, FrameEncoding
from tubelets.models.ipdt.pixel import feelvos_distance, reference_vectors

# 8-connectivity: thin parts (a star's points, a ring) meet their neighbours diagonally.
CONNECTIVITY = np.ones((3, 3), dtype=bool)


def exclusive_masks(probs: torch.Tensor, threshold: float, fixed: Optional[dict[int, torch.Tensor]] = None) -> torch.Tensor:
    """``bool [N, H, W]`` masks sharing no pixel, from probabilities ``float [N, H, W]``.

    A pixel goes to the object of highest probability among those above
    ``threshold`` (ties to the lower row). ``fixed`` maps rows to ``bool [H, W]``
    masks that are kept exactly (prompts); their pixels are taken from every
    other row first. Fixed masks must not overlap one another.
    """
    count = probs.shape[0]
    if count == 0:
        return torch.zeros(probs.shape, dtype=torch.bool, device=probs.device)
    fixed = fixed or {}
    free = probs
    if fixed:
        claimed = torch.stack(list(fixed.values())).any(0)
        free = probs.masked_fill(claimed, 0.0)
    winner = free.argmax(0)
    rows = torch.arange(count, device=probs.device)[:, None, None]
    masks = (free > threshold) & (winner[None] == rows)
    for row, mask in fixed.items():
        masks[row] = mask
    return masks


def component_at(mask: np.ndarray, y: int, x: int) -> np.ndarray:
    """The 8-connected component of ``bool [H, W]`` ``mask`` holding pixel ``(y, x)`` (empty if it is off)."""
    if not mask[y, x]:
        return np.zeros_like(mask, dtype=bool)
    labels, _ = ndimage.label(mask, structure=CONNECTIVITY)
    return labels == labels[y, x]


def click_pixels(points: Sequence[tuple[float, float]], frame_size: tuple[int, int]) -> list[tuple[int, int]]:
    """``(row, column)`` of the pixel under each ``(x, y)`` click; ``ValueError`` for a click outside the frame."""
    height, width = frame_size
    pixels = []
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < width and 0 <= y < height):
            raise ValueError(f"click ({x}, {y}) lies outside the {width}x{height} frame (0 <= x < W, 0 <= y < H)")
        pixels.append((int(y), int(x)))
    return pixels


def seed_regions(encoding: FrameEncoding, pixels: list[tuple[int, int]], point_threshold: float) -> torch.Tensor:
    """``float32 [N, h, w]`` P2 regions (0/1): cells near each click's embedding and connected to its cell.

    Only the cells that show the frame count (not the detector's padding);
    the click's own cell is always in its region.
    """
    embedding = encoding.embedding[0]  # [D, h, w]
    height, width = encoding.p2_size
    rows = min(height, math.ceil(encoding.frame_size[0] * encoding.scale / geometry.P2_STRIDE))
    cols = min(width, math.ceil(encoding.frame_size[1] * encoding.scale / geometry.P2_STRIDE))
    regions = torch.zeros((len(pixels), height, width), device=embedding.device)
    for n, (y, x) in enumerate(pixels):
        cy = min(int(y * encoding.scale / geometry.P2_STRIDE), rows - 1)
        cx = min(int(x * encoding.scale / geometry.P2_STRIDE), cols - 1)
        seed = embedding[:, cy, cx, None, None]
        near = feelvos_distance((embedding - seed).pow(2).sum(0)) < point_threshold
        near = near[:rows, :cols].cpu().numpy()
        near[cy, cx] = True
        regions[n, :rows, :cols] = torch.from_numpy(component_at(near, cy, cx)).float()
    return regions


@torch.no_grad()
def refine_regions(model: IPDT, encoding: FrameEncoding, regions: torch.Tensor) -> torch.Tensor:
    """Mask probabilities ``float32 [N, H, W]`` from the dynamic head fed P2 ``regions`` as reference and previous mask."""
    count = regions.shape[0]
    pair = torch.zeros(count, dtype=torch.long, device=regions.device)
    reference = reference_vectors(encoding.embedding.expand(count, -1, -1, -1), regions, model.config.reference_pixels)
    logits = model.segment_instances(encoding, encoding, pair, reference, regions)
    return torch.sigmoid(geometry.p2_to_frame(logits, encoding.scale, encoding.frame_size))


@torch.no_grad()
def grow_from_points(model: IPDT, encoding: FrameEncoding, points: Sequence[tuple[float, float]],
                     point_threshold: float, mask_threshold: float,
                     taken: Optional[np.ndarray] = None, refine: bool = True) -> list[np.ndarray]:
    """One ``bool [H, W]`` mask per ``(x, y)`` click of one frame (``encoding``, ``P = 1``); masks share no pixel.

    ``taken`` (``bool [H, W]``) marks pixels that belong to other objects
    already (prompt masks of the frame): no mask gets them, and a click on
    one is a ``ValueError``, as are two clicks on one pixel. Each mask is the
    component holding its click, never empty: where the head's mask misses
    the click, the seed region (and at worst the click's pixel) stands in.
    ``refine=False`` skips the head and returns the seed regions.
    """
    if not points:
        return []
    pixels = click_pixels(points, encoding.frame_size)
    taken = np.zeros(encoding.frame_size, bool) if taken is None else np.asarray(taken, bool)
    _check_clicks(points, pixels, taken)
    regions = seed_regions(encoding, pixels, point_threshold)
    seed_masks = geometry.p2_to_frame(regions, encoding.scale, encoding.frame_size) > 0.5
    probs = refine_regions(model, encoding, regions) if refine else seed_masks.float()
    probs = probs.masked_fill(torch.from_numpy(taken).to(probs.device), 0.0)
    for n, (y, x) in enumerate(pixels):  # each click's pixel is its own object's
        probs[:, y, x] = 0.0
        probs[n, y, x] = 1.0
    # Below 1, so that a click's own pixel (probability 1) always passes.
    assigned = exclusive_masks(probs, min(mask_threshold, 0.999)).cpu().numpy()
    grown = [component_at(assigned[n], y, x) for n, (y, x) in enumerate(pixels)]
    seed_masks = seed_masks.cpu().numpy()
    for n, (y, x) in enumerate(pixels):
        if not grown[n].any():
            others = np.any([g for m, g in enumerate(grown) if m != n], axis=0) if len(grown) > 1 else False
            fallback = component_at(seed_masks[n] & ~taken & ~others, y, x)
            fallback[y, x] = True
            grown[n] = fallback
    return grown


def _check_clicks(points, pixels: list[tuple[int, int]], taken: np.ndarray) -> None:
    seen: dict[tuple[int, int], int] = {}
    for n, pixel in enumerate(pixels):
        if taken[pixel]:
            raise ValueError(f"click {tuple(points[n])} lies on a pixel that belongs to another object's mask")
        if pixel in seen:
            raise ValueError(f"clicks {tuple(points[seen[pixel]])} and {tuple(points[n])} fall on the same pixel")
        seen[pixel] = n
