"""Exact video IoU between the predictions and the ground truth of one video.

Video IoU = (sum over frames of intersections) / (sum over frames of unions),
where a frame with a mask on one side only adds that mask's area to the union
and a pair's frame count is the shorter of its two segmentation lists.

All sums are integer pixel counts, so the result is bit-identical to the
official evaluator's float sums of integer areas. Per frame, one pycocotools
``iou`` call covers every pair that can match; the integer intersection is
recovered from it as ``round(iou * (a + b) / (1 + iou))`` (exact: pycocotools
returns the correctly rounded ``i / (a + b - i)`` with ``i < 2**32``, so the
error stays far below half a pixel).
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

from tubelets.errors import DatasetError
from tubelets.metrics.vis_tracks import TrackSet, check_masks


def video_iou(dets: TrackSet, gts: TrackSet, video_id=None) -> np.ndarray:
    """IoU of every prediction with every ground truth of the same category.

    Returns ``float64[len(dets), len(gts)]``; pairs of different categories are 0.
    Raises ``DatasetError`` when predicted and ground-truth masks differ in size.
    """
    if dets.frame_size and gts.frame_size and dets.frame_size != gts.frame_size:
        raise DatasetError(f"video {video_id!r}: predicted masks are {dets.frame_size[0]} x {dets.frame_size[1]}, "
                           f"ground-truth masks {gts.frame_size[0]} x {gts.frame_size[1]}")
    ious = np.zeros((len(dets), len(gts)), dtype=np.float64)
    same = np.equal.outer(dets.category, gts.category)
    rows, cols = np.flatnonzero(same.any(axis=1)), np.flatnonzero(same.any(axis=0))
    if rows.size == 0:
        return ious
    sub_dets, sub_gts = dets.take(rows), gts.take(cols)
    inter = summed_intersections(sub_dets, sub_gts)
    frames = np.minimum.outer(sub_dets.length, sub_gts.length)
    union = _prefix_areas(sub_dets, frames) + _prefix_areas(sub_gts, frames.T).T - inter
    sub = np.zeros(union.shape)
    np.divide(inter, union, out=sub, where=union > 0)
    ious[np.ix_(rows, cols)] = sub
    return np.where(same, ious, 0.0)


def summed_intersections(dets: TrackSet, gts: TrackSet) -> np.ndarray:
    """``int64[D, G]``: mask intersections summed over the frames both tracks have."""
    pair_det, pair_gt, pair_frame, ious = [], [], [], []
    for f, di, gi, iou in _frame_ious(dets, gts):
        ious.append(iou.ravel())
        pair_det += [i for i in di for _ in gi]  # row-major, like the iou matrix
        pair_gt += gi * len(di)
        pair_frame += [f] * (len(di) * len(gi))
    inter = np.zeros(len(dets) * len(gts), dtype=np.int64)
    if ious:
        iou, d, g, f = np.concatenate(ious), np.array(pair_det), np.array(pair_gt), np.array(pair_frame)
        area_sum = dets.areas[d, f] + gts.areas[g, f]
        np.add.at(inter, d * len(gts) + g, np.rint(iou * area_sum / (1.0 + iou)).astype(np.int64))
    return inter.reshape(len(dets), len(gts))


def frame_matches(dets: TrackSet, gts: TrackSet, threshold: float) -> np.ndarray:
    """``bool[D, G, F]``: the frames where prediction ``d``'s mask overlaps track ``g``'s at IoU >= ``threshold``."""
    num_frames = int(max(dets.length.max(initial=0), gts.length.max(initial=0)))
    matches = np.zeros((len(dets), len(gts), num_frames), dtype=bool)
    for f, di, gi, iou in _frame_ious(dets, gts):
        matches[np.ix_(di, gi, [f])] = (iou >= threshold)[:, :, None]
    return matches


def _frame_ious(dets: TrackSet, gts: TrackSet):
    """Per frame where both sides have masks: ``(frame, det indices, gt indices, float64 IoU [len(di), len(gi)])``."""
    check_masks(dets, gts)
    num_frames = int(min(dets.length.max(initial=0), gts.length.max(initial=0)))
    det_frames, gt_frames = _by_frame(dets, num_frames), _by_frame(gts, num_frames)
    for f, ((di, d_rles), (gi, g_rles)) in enumerate(zip(det_frames, gt_frames)):
        if di and gi:
            iou = np.asarray(coco_mask.iou(d_rles, g_rles, [0] * len(gi)), dtype=np.float64)
            yield f, di, gi, iou.reshape(len(di), len(gi))


def _by_frame(tracks: TrackSet, num_frames: int) -> list[tuple[list, list]]:
    """Per frame: (indices of the tracks with a mask there, those masks)."""
    out = [([], []) for _ in range(num_frames)]
    for t, row in enumerate(tracks.masks):
        for f, rle in enumerate(row[:num_frames]):
            if rle is not None:
                out[f][0].append(t)
                out[f][1].append(rle)
    return out


def _prefix_areas(tracks: TrackSet, frames: np.ndarray) -> np.ndarray:
    """``int64[N, K]``: track ``t``'s mask area summed over its first ``frames[t, k]`` frames."""
    prefix = np.concatenate([np.zeros((len(tracks), 1), np.int64), np.cumsum(tracks.areas, axis=1)], axis=1)
    return np.take_along_axis(prefix, frames, axis=1)
