"""Per-video part of the YouTube-VIS evaluation: video IoU and greedy matching.

``match_video`` turns one video's ground truth and predictions into a small
``VideoMatches`` record; ``tubelets.metrics.vis.accumulate`` combines the records
of all videos. The split lets a pipeline match videos in parallel and
accumulate once. Protocol details are listed in ``vis_params``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Sequence

import numpy as np

from tubelets.metrics.vis_data import keep_categories
from tubelets.metrics.vis_iou import video_iou
from tubelets.metrics.vis_params import AREA_RANGES, MATCH_THRESHOLDS, MAX_DETS
from tubelets.metrics.vis_tracks import TrackSet, ground_truth_tracks, prediction_tracks

NUM_AREAS = len(AREA_RANGES)
NUM_THRESHOLDS = len(MATCH_THRESHOLDS)


@dataclass
class VideoMatches:
    """What the accumulation needs from one video (picklable, a few KB).

    ``N`` kept predictions (the best ``MAX_DETS[-1]`` per category), ordered by
    category id and then by the protocol's score order; ``A`` area ranges,
    ``T`` IoU thresholds (``vis_params``); ``C`` categories with ground truth.

    det_category: int64[N]
    det_score: float64[N]
    det_rank: int32[N], position within the video's predictions of that category
    det_tp, det_fp: bool[A, T, N]; a prediction that is neither is ignored
    gt_category: int64[C]
    gt_valid: int64[C, A], number of non-ignored ground truth per category and area
    num_gt: ground-truth tracks of known categories (crowd included)
    num_predictions: predictions of known categories (before the per-category cap)
    """

    video_id: object
    det_category: np.ndarray
    det_score: np.ndarray
    det_rank: np.ndarray
    det_tp: np.ndarray
    det_fp: np.ndarray
    gt_category: np.ndarray
    gt_valid: np.ndarray
    num_gt: int = 0
    num_predictions: int = 0


def match_video(video: dict, gt_annotations: Sequence[dict], predictions: Sequence[dict],
                category_ids: Collection | None = None) -> VideoMatches:
    """Match one video's predictions to its ground truth at every area range and threshold.

    ``video`` is the ground truth's video record (``id``; ``height``/``width`` for
    polygons); ``predictions`` must be in results-file order (it breaks score
    ties). With ``category_ids`` given, records of other categories are dropped.
    """
    if category_ids is not None:
        allowed = set(category_ids)
        gt_annotations, predictions = keep_categories(gt_annotations, allowed), keep_categories(predictions, allowed)
    where = f"video {video.get('id')!r}"
    gts = ground_truth_tracks(gt_annotations, video, where)
    all_dets = prediction_tracks(predictions, video, where)
    order, ranks = top_detections(all_dets.category, all_dets.score)
    dets = all_dets.take(order)
    tp, fp, gt_ignore = match_tracks(video_iou(dets, gts, video.get("id")), dets, gts)
    categories = np.unique(gts.category)
    gt_valid = np.zeros((len(categories), NUM_AREAS), dtype=np.int64)
    np.add.at(gt_valid, np.searchsorted(categories, gts.category), (~gt_ignore).T.astype(np.int64))
    return VideoMatches(video_id=video.get("id"), det_category=dets.category, det_score=dets.score,
                        det_rank=ranks, det_tp=tp, det_fp=fp, gt_category=categories, gt_valid=gt_valid,
                        num_gt=len(gts), num_predictions=len(predictions))


def top_detections(category: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which predictions the protocol keeps, in its order: ``(index int64[K], rank int32[K])``.

    Grouped by category (ascending); within a category by descending score,
    ties in the given order (a stable sort, like the official mergesort); at most
    ``MAX_DETS[-1]`` per category. ``rank`` is the position within the category.
    """
    order = np.lexsort((-score, category))  # stable: equal keys keep the given order
    sorted_category = category[order]
    rank = np.arange(order.size) - np.searchsorted(sorted_category, sorted_category, side="left")
    keep = rank < MAX_DETS[-1]
    return order[keep], rank[keep].astype(np.int32)


def match_tracks(ious: np.ndarray, dets: TrackSet, gts: TrackSet):
    """TP/FP flags of a video's predictions, all categories at once.

    ``ious``: float64[D, G], 0 across categories, predictions in score order
    within each category. Matching all categories together gives the per-category
    result: a prediction can only take a ground truth of its own category (other
    IoUs are below every threshold). Returns ``(tp bool[A, T, D], fp bool[A, T, D],
    gt_ignore bool[A, G])``.
    """
    gt_ignore = gts.ignore[None, :] | _outside(gts.avg_area)
    det_gt = greedy_match(ious, gt_ignore, gts.rematchable)
    matched = det_gt >= 0
    if len(gts):
        picked = np.where(matched, det_gt, 0)
        det_ignored = matched & gt_ignore[np.arange(NUM_AREAS)[:, None, None], picked]
        # The official accumulation tests the stored ground-truth id for truth.
        counted = matched & gts.id_is_nonzero[picked]
    else:
        det_ignored = counted = matched
    det_ignored = det_ignored | (~counted & _outside(dets.avg_area)[:, None, :])
    return counted & ~det_ignored, ~counted & ~det_ignored, gt_ignore


def greedy_match(ious: np.ndarray, gt_ignore: np.ndarray, rematchable: np.ndarray) -> np.ndarray:
    """Index of the ground truth each prediction takes, or -1: ``int64[A, T, D]``.

    ``ious``: float64[D, G] (predictions in score order); ``gt_ignore``: bool[A, G];
    ``rematchable``: bool[G] (crowd, may take several predictions). All area ranges
    and thresholds advance together, one prediction at a time.
    """
    num_dets, num_gts = ious.shape
    det_gt = np.full((NUM_AREAS, NUM_THRESHOLDS, num_dets), -1, dtype=np.int64)
    if num_dets == 0 or num_gts == 0:
        return det_gt
    taken = np.zeros((NUM_AREAS, NUM_THRESHOLDS, num_gts), dtype=bool)
    above = ious[:, None, :] >= MATCH_THRESHOLDS[None, :, None]  # [D, T, G]
    ignored = gt_ignore[:, None, :]
    # A prediction below the lowest threshold with every ground truth never matches.
    for d in np.flatnonzero(above[:, 0, :].any(axis=1)):
        available = above[d][None] & (~taken | rematchable)
        pick = _last_best(available & ~ignored, ious[d])
        pick = np.where(pick >= 0, pick, _last_best(available & ignored, ious[d]))
        det_gt[:, :, d] = pick
        a, t = np.nonzero(pick >= 0)
        taken[a, t, pick[a, t]] = True
    return det_gt


def _last_best(allowed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row of ``allowed`` (bool[..., G]) the last index of the largest ``values``
    among the allowed ones, or -1 when none is allowed (the official tie rule)."""
    scored = np.where(allowed, values, -np.inf)
    last = scored.shape[-1] - 1 - np.argmax(scored[..., ::-1], axis=-1)
    return np.where(allowed.any(axis=-1), last, -1)


def _outside(areas: np.ndarray) -> np.ndarray:
    """bool[A, len(areas)]: outside each closed area range."""
    return (areas[None, :] < AREA_RANGES[:, :1]) | (areas[None, :] > AREA_RANGES[:, 1:])
