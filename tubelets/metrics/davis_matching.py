"""Score VIS tubelets as VOS output: match them to a sequence's annotated objects, then DAVIS J/F.

A VIS run finds instances on its own, with ids of its own; to compare it with
a VOS run on the same objects, each ground-truth object is given the tubelet
that overlaps it most, one to one (the Hungarian method on the mean
per-frame J over the sequence, as DAVIS's unsupervised protocol matches
objects). Matched tubelets are painted into id maps by descending score, one
object per pixel, and scored with :func:`tubelets.metrics.davis.evaluate_sequence`;
an object no tubelet overlaps is scored as missed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from tubelets import masks
from tubelets.metrics.davis import SequenceResult, evaluate_sequence
from tubelets.records import Tubelet


def tubelet_volume(tubelet: Tubelet, shape: tuple[int, int, int]) -> np.ndarray:
    """``bool [T, H, W]``: the tubelet's masks in a sequence of ``shape``."""
    volume = np.zeros(shape, bool)
    for item in tubelet.frames:
        volume[item.frame] = masks.decode(item.mask).astype(bool)
    return volume


def mean_region_similarity(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean per-frame IoU of two ``bool [T, H, W]`` volumes (a frame where both are empty counts 1)."""
    inter = np.logical_and(truth, predicted).sum(axis=(1, 2))
    union = np.logical_or(truth, predicted).sum(axis=(1, 2))
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


def match_tubelets(truth_ids: np.ndarray, object_ids: Sequence[int], tubelets: Sequence[Tubelet]) -> np.ndarray:
    """``uint8 [T, H, W]`` predicted id maps: each object's matched tubelet, painted by descending score.

    ``truth_ids`` is the sequence's ground-truth id maps; a pair whose mean J
    is 0 (no overlap in any frame where either has pixels) is never matched.
    """
    shape = truth_ids.shape
    volumes = [tubelet_volume(t, shape) for t in tubelets]
    similarity = np.zeros((len(object_ids), len(volumes)))
    for row, object_id in enumerate(object_ids):
        truth = truth_ids == object_id
        present = truth.any(axis=(1, 2))
        for col, volume in enumerate(volumes):
            # Over the frames where either has pixels: frames both leave empty say nothing about the match.
            either = present | volume.any(axis=(1, 2))
            if np.logical_and(truth, volume).any():
                similarity[row, col] = mean_region_similarity(truth[either], volume[either])
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    predicted = np.zeros(shape, np.uint8)
    pairs = [(row, col) for row, col in zip(rows, cols) if similarity[row, col] > 0]
    for row, col in sorted(pairs, key=lambda pair: -tubelets[pair[1]].score):
        predicted[volumes[col] & (predicted == 0)] = object_ids[row]
    return predicted


def evaluate_tubelets(truth_ids: np.ndarray, object_ids: Sequence[int], tubelets: Sequence[Tubelet],
                      sequence: str = "sequence") -> SequenceResult:
    """DAVIS scores of VIS ``tubelets`` matched to the sequence's objects (see the module docstring)."""
    predicted = match_tubelets(truth_ids, object_ids, tubelets)
    return evaluate_sequence(truth_ids, predicted, object_ids, sequence=sequence)
