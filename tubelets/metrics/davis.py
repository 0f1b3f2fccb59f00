"""DAVIS semi-supervised video object segmentation metrics: J, F and J&F.

Numbers agree with the official ``davis2017-evaluation`` tool
(davisvideochallenge/davis2017-evaluation) on its semi-supervised task:

* **J** (region similarity) is the IoU of a ground-truth and a predicted object
  mask; a frame where both are empty scores 1.
* **F** (boundary F-measure) compares 1-pixel boundary maps (see
  :func:`boundary_map`). A boundary pixel counts as matched when a boundary
  pixel of the other mask lies within ``r`` pixels (Euclidean), which is what
  the official dilation by a disk ``{x^2 + y^2 <= r^2}`` tests;
  ``r = bound_th`` when ``bound_th >= 1``, otherwise
  ``ceil(bound_th * sqrt(H^2 + W^2))`` (8 px at 480x854).
* Per object and metric: mean, recall (share of frames scoring > 0.5) and
  decay (mean of the first quarter of the frames minus mean of the last
  quarter, with the official overlapping quarters; see :func:`frame_statistics`).
* A sequence is scored on frames ``1 .. T-2``: the first frame (given to the
  method) and the last one are left out. Its objects are ids ``1 .. N`` with
  ``N`` the largest id in the first ground-truth frame; id 255 (void) counts as
  background; an object the prediction never labels scores as an empty mask.
* Global numbers average over all objects of all sequences, and
  ``J&F-Mean = (J-Mean + F-Mean) / 2``.

One deliberate difference: the official decay stores its bin edges as uint8,
which wraps for sequences of more than 256 scored frames; here they do not wrap
(DAVIS sequences are all far shorter, so DAVIS numbers are unaffected).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from tubelets.errors import DatasetError

DEFAULT_BOUND_TH = 0.008
VOID_ID = 255
GLOBAL_KEYS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


# --------------------------------------------------------------------------- per frame


def region_similarity(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """J per frame: IoU of ``gt`` and ``pred``, both ``bool [T, H, W]``.

    ``void`` (``bool [T, H, W]``), where given, marks pixels left out of both
    the intersection and the union. Returns ``float64 [T]``; a frame whose
    union is empty scores 1.
    """
    gt, pred = _check_frames(gt, pred, void)
    inter = np.count_nonzero(gt & pred, axis=(1, 2))
    union = np.count_nonzero(gt | pred, axis=(1, 2))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def boundary_f_measure(
    gt: np.ndarray, pred: np.ndarray, bound_th: float = DEFAULT_BOUND_TH, void: np.ndarray | None = None
) -> np.ndarray:
    """F per frame: boundary F-measure of ``pred`` against ``gt`` (``bool [T, H, W]``).

    Precision is the share of predicted boundary pixels within the tolerance
    of a ground-truth boundary pixel, recall the converse. With no predicted
    boundary precision is 1, with no ground-truth boundary recall is 1, and a
    side with a boundary facing an empty one scores 0. ``void`` pixels are
    cleared from both masks before their boundaries are taken. Returns
    ``float64 [T]``.
    """
    gt, pred = _check_frames(gt, pred, void)
    radius = boundary_tolerance(gt.shape[1:], bound_th)  # from the whole frame, before cropping
    window = (slice(None), *_content_window(gt, pred))
    gt_edge, pred_edge = boundary_map(gt[window]), boundary_map(pred[window])
    n_gt = np.count_nonzero(gt_edge, axis=(1, 2))
    n_pred = np.count_nonzero(pred_edge, axis=(1, 2))
    # An empty boundary has no pixel to miss, so its own ratio is 1; the other
    # side then matches nothing and its ratio is 0, as the official cases say.
    precision = _share(_matched_per_frame(pred_edge, gt_edge, radius), n_pred)
    recall = _share(_matched_per_frame(gt_edge, pred_edge, radius), n_gt)
    total = precision + recall
    return np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1.0), 0.0)


def boundary_map(masks: np.ndarray) -> np.ndarray:
    """1-pixel boundaries of ``masks`` (``bool [T, H, W]``), as ``bool [T, H, W]``.

    A pixel is on the boundary when it differs from its right, lower or
    lower-right neighbour, so boundaries sit half a pixel towards the origin.
    Outside the image the nearest row/column repeats: the last row compares
    with its right neighbour only, the last column with its lower one only, the
    bottom-right pixel never, and a mask touching the image border has no
    boundary along it.
    """
    padded = np.pad(masks, ((0, 0), (0, 1), (0, 1)), mode="edge")
    right, below, below_right = padded[:, :-1, 1:], padded[:, 1:, :-1], padded[:, 1:, 1:]
    return (masks != right) | (masks != below) | (masks != below_right)


def boundary_tolerance(shape: Sequence[int], bound_th: float = DEFAULT_BOUND_TH) -> int:
    """Boundary match radius in pixels for frames of ``shape = (H, W)``.

    ``bound_th >= 1`` is a radius in pixels (a whole number); below 1 it is a
    fraction of the image diagonal, rounded up.
    """
    if not bound_th >= 0:
        raise ValueError(f"bound_th must be >= 0, got {bound_th}")
    if bound_th >= 1:
        if bound_th != int(bound_th):
            raise ValueError(f"a bound_th >= 1 is a radius in whole pixels, got {bound_th}")
        return int(bound_th)
    height, width = shape
    return math.ceil(bound_th * math.sqrt(height * height + width * width))


def _content_window(gt: np.ndarray, pred: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of ``[T, H, W]`` masks outside which no boundary can lie.

    The box around all foreground, grown by one pixel each way (within the
    frame), gives every pixel inside the neighbours it has in the full frame,
    so boundaries found in the crop are exactly those of the frame.
    """
    occupied = (gt | pred).any(axis=0)
    rows, cols = np.flatnonzero(occupied.any(axis=1)), np.flatnonzero(occupied.any(axis=0))
    if len(rows) == 0:
        return slice(0, 1), slice(0, 1)
    return slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2)


def _share(matched: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``matched / total`` per frame, 1 where ``total`` is 0."""
    return np.where(total > 0, matched / np.maximum(total, 1), 1.0)


def _matched_per_frame(source: np.ndarray, target: np.ndarray, radius: int) -> np.ndarray:
    """Per frame, how many ``source`` pixels lie within ``radius`` of a ``target`` pixel.

    ``source`` and ``target`` are ``bool [T, H, W]``; returns ``int64 [T]``.
    All frames share one k-d tree: frame index is a third coordinate spaced
    more than ``radius`` apart, so a match never crosses frames.
    """
    src, tgt = np.argwhere(source), np.argwhere(target)  # rows (t, y, x)
    if len(src) == 0 or len(tgt) == 0:
        return np.zeros(source.shape[0], dtype=np.int64)
    spacing = np.array([radius + 1.0, 1.0, 1.0])
    dist, _ = cKDTree(tgt * spacing).query(src * spacing, k=1, distance_upper_bound=radius + 0.5)
    # Same-frame squared distances are whole numbers; rint undoes the sqrt's rounding.
    within = np.rint(dist * dist) <= radius * radius
    return np.bincount(src[within, 0], minlength=source.shape[0])


def _check_frames(gt, pred, void):
    """``gt`` and ``pred`` as validated ``bool [T, H, W]`` masks with ``void`` cleared from both."""
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.ndim != 3 or gt.shape != pred.shape:
        raise ValueError(f"expected two [T, H, W] masks of one shape, got {gt.shape} and {pred.shape}")
    if void is None:
        return gt, pred
    void = np.asarray(void, dtype=bool)
    if void.shape != gt.shape:
        raise ValueError(f"void mask shape {void.shape} differs from the masks' {gt.shape}")
    return gt & ~void, pred & ~void


# --------------------------------------------------------------------------- per object


@dataclass(frozen=True)
class Statistics:
    """Mean, recall (share of frames > 0.5) and decay of one per-frame metric."""

    mean: float
    recall: float
    decay: float


def frame_statistics(values: Iterable[float]) -> Statistics:
    """Mean, recall and decay of per-frame scores ``values`` (``float [N]``, N >= 1).

    The mean skips NaN; recall counts NaN as a miss. Decay splits the frames
    into 4 bins whose edges are ``round(linspace(1, N, 5)) - 1`` (halves round
    up) and whose slices include both edges, so neighbouring bins share a
    frame; it is the mean of the first bin minus the mean of the last.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected a non-empty 1-D array of scores, got shape {values.shape}")
    edges = np.round(np.linspace(1, len(values), 5) + 1e-10).astype(np.int64) - 1
    first, last = values[edges[0] : edges[1] + 1], values[edges[3] : edges[4] + 1]
    with warnings.catch_warnings():  # all-NaN slices give NaN, as in the official tool
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return Statistics(
            mean=float(np.nanmean(values)),
            recall=float(np.mean(values > 0.5)),
            decay=float(np.nanmean(first) - np.nanmean(last)),
        )


@dataclass(frozen=True)
class ObjectResult:
    """Scores of one object: ``j`` and ``f`` are ``float64 [T-2]`` over frames 1..T-2."""

    object_id: int
    j: np.ndarray
    f: np.ndarray
    j_stats: Statistics
    f_stats: Statistics

    @classmethod
    def from_frames(cls, object_id: int, j: np.ndarray, f: np.ndarray) -> "ObjectResult":
        return cls(int(object_id), j, f, frame_statistics(j), frame_statistics(f))

    @property
    def jf_mean(self) -> float:
        return (self.j_stats.mean + self.f_stats.mean) / 2


@dataclass(frozen=True)
class SequenceResult:
    """Scores of one sequence: one :class:`ObjectResult` per object, in id order."""

    sequence: str
    num_frames: int
    objects: tuple[ObjectResult, ...]

    @property
    def j_mean(self) -> float:
        return float(np.mean([o.j_stats.mean for o in self.objects]))

    @property
    def f_mean(self) -> float:
        return float(np.mean([o.f_stats.mean for o in self.objects]))

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2


# --------------------------------------------------------------------------- sequences


def evaluate_sequence(
    gt_ids: np.ndarray,
    pred_ids: np.ndarray,
    object_ids: Sequence[int] | None = None,
    *,
    sequence: str = "sequence",
    bound_th: float = DEFAULT_BOUND_TH,
) -> SequenceResult:
    """Score a predicted sequence against its ground truth, DAVIS semi-supervised style.

    ``gt_ids`` and ``pred_ids`` are integer object-id maps ``[T, H, W]`` (T >= 3)
    as DAVIS palette PNGs hold them: 0 is background, 255 in the ground truth
    is void and counts as background. Frames 1..T-2 are scored. By default the
    objects are ``1 .. N``, ``N`` the largest non-void id in ``gt_ids[0]``,
    and a predicted id above ``N`` in a scored frame is an error, as in the
    official tool; ``object_ids`` names the objects instead
    (other predicted ids are then ignored). Raises :class:`DatasetError`
    naming ``sequence`` on bad input.
    """
    gt_ids, pred_ids = _check_label_maps(gt_ids, pred_ids, sequence)
    # Object ids never equal VOID_ID, so `gt == id` below already reads void as background.
    ids = _object_ids(np.where(gt_ids[0] == VOID_ID, 0, gt_ids[0]), pred_ids[1:-1], object_ids, sequence)
    gt_scored, pred_scored = gt_ids[1:-1], pred_ids[1:-1]
    objects = []
    for object_id in ids:
        gt, pred = gt_scored == object_id, pred_scored == object_id
        j = region_similarity(gt, pred)
        f = boundary_f_measure(gt, pred, bound_th)
        objects.append(ObjectResult.from_frames(object_id, j, f))
    return SequenceResult(sequence, int(gt_ids.shape[0]), tuple(objects))


def _check_label_maps(gt_ids, pred_ids, sequence):
    gt_ids, pred_ids = np.asarray(gt_ids), np.asarray(pred_ids)
    for name, ids in (("ground truth", gt_ids), ("prediction", pred_ids)):
        if not np.issubdtype(ids.dtype, np.integer):
            raise DatasetError(f"sequence {sequence!r}: {name} ids must be integers, got {ids.dtype}")
    if gt_ids.ndim != 3 or gt_ids.shape != pred_ids.shape:
        raise DatasetError(
            f"sequence {sequence!r}: ground truth {gt_ids.shape} and prediction {pred_ids.shape} "
            "must be [T, H, W] id maps of one shape"
        )
    if gt_ids.shape[0] < 3:
        raise DatasetError(f"sequence {sequence!r}: needs at least 3 frames (first and last are not scored)")
    return gt_ids, pred_ids


def _object_ids(first_gt, pred_scored, object_ids, sequence) -> list[int]:
    if object_ids is not None:
        ids = sorted({int(i) for i in object_ids})
        if not ids or ids[0] < 1 or VOID_ID in ids:
            raise DatasetError(
                f"sequence {sequence!r}: object ids must be positive and not {VOID_ID}, "
                f"got {list(object_ids)}"
            )
        return ids
    num_objects = int(first_gt.max())
    if num_objects == 0:
        raise DatasetError(f"sequence {sequence!r}: the first ground-truth frame has no object")
    highest = int(pred_scored.max())
    if highest > num_objects:
        raise DatasetError(
            f"sequence {sequence!r}: prediction uses id {highest} but the first frame has "
            f"only objects 1..{num_objects}"
        )
    return list(range(1, num_objects + 1))


def summarize(results: Sequence[SequenceResult]) -> dict:
    """Global, per-sequence and per-object tables over ``results``.

    Returns the :data:`GLOBAL_KEYS` numbers (means over all objects of all
    sequences), ``"per_sequence"``: rows ``{sequence, J-Mean, F-Mean,
    J&F-Mean}`` averaged over the sequence's objects, and ``"per_object"``:
    rows ``{name, sequence, object_id, J-Mean, J-Recall, J-Decay, F-Mean,
    F-Recall, F-Decay, J&F-Mean}`` with ``name = f"{sequence}_{object_id}"``
    as in the official per-object CSV.
    """
    if not results:
        raise DatasetError("no sequence results to summarize")
    names = [r.sequence for r in results]
    if len(set(names)) != len(names):
        raise DatasetError(f"sequence names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    per_object = [_object_row(r.sequence, o) for r in results for o in r.objects]
    summary = {key: float(np.mean([row[key] for row in per_object])) for key in GLOBAL_KEYS[1:]}
    summary = {"J&F-Mean": (summary["J-Mean"] + summary["F-Mean"]) / 2, **summary}
    summary["per_sequence"] = [
        {"sequence": r.sequence, "J-Mean": r.j_mean, "F-Mean": r.f_mean, "J&F-Mean": r.jf_mean}
        for r in results
    ]
    summary["per_object"] = per_object
    return summary


def _object_row(sequence: str, obj: ObjectResult) -> dict:
    row = {"name": f"{sequence}_{obj.object_id}", "sequence": sequence, "object_id": obj.object_id}
    for prefix, stats in (("J", obj.j_stats), ("F", obj.f_stats)):
        row[f"{prefix}-Mean"] = stats.mean
        row[f"{prefix}-Recall"] = stats.recall
        row[f"{prefix}-Decay"] = stats.decay
    row["J&F-Mean"] = obj.jf_mean
    return row
