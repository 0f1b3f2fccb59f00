"""Helpers every tracker shares: box IoU and the tubelet class/score rules.

A tracker links detections into per-instance lists of :class:`TubeletFrame`
plus class *votes* (a label and a score per linked detection); it hands both
to :func:`finalize_tubelet`, so every tracker applies the same rules:

* the category is the most frequent vote; a tie goes to the label with the
  larger summed score, then to the smaller id (deterministic);
* the score is the mean per-frame (calibrated) score over frames whose mask
  is non-empty; frames with an empty mask are dropped, as the
  :class:`Tubelet` contract asks.

Votes are kept apart from frames because a pixel tracker may propagate a mask
into a frame where no detection voted. Turning tubelets into table rows and
results entries is the core's (:mod:`tubelets.tubelet_rows`, beside the table's schema).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional, Sequence

import numpy as np

from tubelets import masks
from tubelets.records import FrameDetections, Tubelet, TubeletFrame


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``x1, y1, x2, y2`` boxes ``[N, 4]`` and ``[M, 4]``: ``float64 [N, M]``.

    Degenerate boxes (zero area) have IoU 0 with everything.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def majority_label(labels: Sequence[int], scores: Sequence[float]) -> int:
    """The most frequent label; ties go to the larger summed score, then the smaller id."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.size == 0 or labels.shape != scores.shape:
        raise ValueError(f"need one score per label and at least one label, got {labels.shape} and {scores.shape}")
    unique, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    summed = np.bincount(inverse, weights=scores)
    # lexsort: the last key is primary; -unique makes the smaller id win a full tie.
    best = np.lexsort((-unique, summed, counts))[-1]
    return int(unique[best])


def frame_of(detections: FrameDetections, index: int) -> TubeletFrame:
    """Detection ``index`` of one frame as a :class:`TubeletFrame`."""
    return TubeletFrame(
        frame=detections.frame,
        mask=detections.masks[index],
        box=np.asarray(detections.boxes[index], dtype=np.float32),
        score=float(detections.scores[index]),
    )


def finalize_tubelet(
    tubelet_id: int, frames: Sequence[TubeletFrame], labels: Sequence[int], scores: Sequence[float]
) -> Optional[Tubelet]:
    """One tubelet from linked frames and class votes (``labels[i]`` with ``scores[i]``).

    Returns None when no frame has a non-empty mask. Frames must be of
    distinct frame numbers; they come back sorted.
    """
    valid = sorted((item for item in frames if masks.area(item.mask) > 0), key=lambda item: item.frame)
    numbers = [item.frame for item in valid]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"tubelet {tubelet_id} has two masks in one frame: frames {numbers}")
    if not valid:
        return None
    category = majority_label(labels, scores)
    score = float(np.mean([item.score for item in valid]))
    return Tubelet(tubelet_id=tubelet_id, category_id=category, score=score, frames=valid)


def number_tubelets(tubelets: Iterable[Tubelet]) -> list[Tubelet]:
    """Copies numbered ``0 .. n-1`` by first frame; ties keep the given order."""
    ordered = sorted(tubelets, key=lambda tubelet: tubelet.first_frame)
    return [dataclasses.replace(tubelet, tubelet_id=index) for index, tubelet in enumerate(ordered)]
