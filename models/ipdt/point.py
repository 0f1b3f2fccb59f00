"""Masks from clicks, and the one-object-per-pixel rule of video object segmentation (VOS).

* :func:`exclusive_masks`: several objects' mask probabilities to masks that
  share no pixel (a pixel goes to the most probable object above the
  threshold; masks given outright, such as prompts, take their pixels first).
* :func:`grow_from_points`: one click per object to a mask. The seed is the
  click's P2 cell and its neighbours, with the cells whose pixel embedding
  lies within ``point_threshold`` (FEELVOS distance) of the click cell's,
  connected to it. The dynamic segmentation head then grows the seed on the
  same frame, as if it were the object's mask in the previous frame (global
  matching against the region's embeddings, the region as the previous mask,
  local matching against the frame itself), a few times over: each step
  reaches only ``local_radius`` cells beyond the last mask.

  Why the neighbours: the head was trained on previous masks the size of an
  object and gives nothing back for a single cell; and with the shipped
  ``tracker-vos-small`` embedding the FEELVOS distance saturates (squared
  distances inside one object are mostly 10-1000, and ``d > 0.999`` beyond
  8), so the distance test adds few cells at any threshold.

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
GROW_STEPS = 8  # head refinements of a click's region at most
SEED_RADIUS = 1  # P2 cells around the click always in its seed region


def exclusive_masks(probs: torch.Tensor, threshold: float,
                    fixed: Optional[dict[int, torch.Tensor]] = None) -> torch.Tensor:
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
    """``float32 [N, h, w]`` P2 seed regions (0/1) of clicks at pixels ``(row, column)``.

    A seed is the click's cell, the cells within ``SEED_RADIUS`` of it, and the
    cells nearer than ``point_threshold`` (FEELVOS distance) to the click
    cell's embedding, the component connected to the click. Only cells that
    show the frame count (not the detector's padding).
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
        near[max(cy - SEED_RADIUS, 0) : cy + SEED_RADIUS + 1, max(cx - SEED_RADIUS, 0) : cx + SEED_RADIUS + 1] = True
        regions[n, :rows, :cols] = torch.from_numpy(component_at(near, cy, cx)).float()
    return regions


@torch.no_grad()
def refine_regions(model: IPDT, encoding: FrameEncoding, regions: torch.Tensor) -> torch.Tensor:
    """Mask probabilities ``float32 [N, H, W]``: the head fed P2 ``regions`` as reference and as previous mask."""
    count = regions.shape[0]
    pair = torch.zeros(count, dtype=torch.long, device=regions.device)
    reference = reference_vectors(encoding.embedding.expand(count, -1, -1, -1), regions, model.config.reference_pixels)
    logits = model.segment_instances(encoding, encoding, pair, reference, regions)
    return torch.sigmoid(geometry.p2_to_frame(logits, encoding.scale, encoding.frame_size))


@torch.no_grad()
def grow_from_points(model: IPDT, encoding: FrameEncoding, points: Sequence[tuple[float, float]],
                     point_threshold: float, mask_threshold: float, taken: Optional[np.ndarray] = None,
                     steps: int = GROW_STEPS) -> list[np.ndarray]:
    """One ``bool [H, W]`` mask per ``(x, y)`` click of one frame (``encoding``, ``P = 1``); masks share no pixel.

    The seed regions (:func:`seed_regions`) are refined by the head up to
    ``steps`` times, each mask feeding the next step (local matching reaches
    ``local_radius`` cells, so a step grows a mask by a few cells at most),
    until no mask changes. ``taken`` (``bool [H, W]``) marks pixels of other
    objects (the frame's prompt masks): no mask gets them, and a click on
    one is a ``ValueError``, as are two clicks on one pixel. Each mask is the
    component holding its click and never empty (at worst the click's pixel).
    ``steps=0`` returns the seed regions.
    """
    if not points:
        return []
    pixels = click_pixels(points, encoding.frame_size)
    taken = torch.zeros(encoding.frame_size, dtype=torch.bool) if taken is None else torch.as_tensor(taken).bool()
    _check_clicks(points, pixels, taken)
    seeds = geometry.p2_to_frame(seed_regions(encoding, pixels, point_threshold), encoding.scale, encoding.frame_size)
    grown = _settle_clicks(seeds, 0.5, pixels, taken)
    for _ in range(steps):
        regions = geometry.masks_to_p2(grown.to(encoding.embedding.device), encoding.scale, encoding.p2_size)
        grown, previous = _settle_clicks(refine_regions(model, encoding, regions), mask_threshold, pixels, taken), grown
        if torch.equal(grown, previous):
            break
    return list(grown.numpy())


def _settle_clicks(probs: torch.Tensor, threshold: float, pixels: list[tuple[int, int]],
                   taken: torch.Tensor) -> torch.Tensor:
    """``bool [N, H, W]`` (CPU): exclusive masks of probabilities ``[N, H, W]``, each the component holding its click.

    ``taken`` pixels go to no click; each click's own pixel always goes to it.
    """
    probs = probs.masked_fill(taken.to(probs.device), 0.0)
    for n, (y, x) in enumerate(pixels):
        probs[:, y, x] = 0.0
        probs[n, y, x] = 1.0
    # Below 1, so that a click's own pixel (probability 1) always passes.
    assigned = exclusive_masks(probs, min(threshold, 0.999)).cpu().numpy()
    return torch.from_numpy(np.stack([component_at(assigned[n], y, x) for n, (y, x) in enumerate(pixels)]))


def _check_clicks(points, pixels: list[tuple[int, int]], taken: torch.Tensor) -> None:
    seen: dict[tuple[int, int], int] = {}
    for n, pixel in enumerate(pixels):
        if taken[pixel]:
            raise ValueError(f"click {tuple(points[n])} lies on a pixel that belongs to another object's mask")
        if pixel in seen:
            raise ValueError(f"clicks {tuple(points[seen[pixel]])} and {tuple(points[n])} fall on the same pixel")
        seen[pixel] = n
