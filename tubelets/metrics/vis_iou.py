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


def video_iou(dets: TrackSet, gts: TrackSet, video_id=None, frames: np.ndarray | None = None) -> np.ndarray:
    """IoU of every prediction with every ground truth of the same category.

    Returns ``float64[len(dets), len(gts)]``; pairs of different categories are 0.
    ``frames``: the pair's :func:`frame_ious`, when the caller has them (they are not computed again).
    Raises ``DatasetError`` when predicted and ground-truth masks differ in size.
    """
    _check_frame_sizes(dets, gts, video_id)
    ious = np.zeros((len(dets), len(gts)), dtype=np.float64)
    same = np.equal.outer(dets.category, gts.category)
    rows, cols = np.flatnonzero(same.any(axis=1)), np.flatnonzero(same.any(axis=0))
    if rows.size == 0:
        return ious
    sub_dets, sub_gts = dets.take(rows), gts.take(cols)
    sub_frames = frame_ious(sub_dets, sub_gts, video_id) if frames is None else frames[np.ix_(rows, cols)]
    inter = summed_intersections(sub_frames, sub_dets, sub_gts)
    lengths = np.minimum.outer(sub_dets.length, sub_gts.length)
    union = _prefix_areas(sub_dets, lengths) + _prefix_areas(sub_gts, lengths.T).T - inter
    sub = np.zeros(union.shape)
    np.divide(inter, union, out=sub, where=union > 0)
    ious[np.ix_(rows, cols)] = sub
    return np.where(same, ious, 0.0)


def frame_ious(dets: TrackSet, gts: TrackSet, video_id=None) -> np.ndarray:
    """``float64[D, G, F]``: the mask IoU of every pair in each frame both sides reach, 0 where either has no mask.

    ``F`` is the shorter of the two sides' longest segmentation lists. Raises
    ``DatasetError`` when predicted and ground-truth masks differ in size.
    """
    _check_frame_sizes(dets, gts, video_id)
    check_masks(dets, gts)
    num_frames = int(min(dets.length.max(initial=0), gts.length.max(initial=0)))
    ious = np.zeros((len(dets), len(gts), num_frames), dtype=np.float64)
    for f, ((di, d_rles), (gi, g_rles)) in enumerate(zip(_by_frame(dets, num_frames), _by_frame(gts, num_frames))):
        if di and gi:
            frame = np.asarray(coco_mask.iou(d_rles, g_rles, [0] * len(gi)), dtype=np.float64)
            ious[np.ix_(di, gi, [f])] = frame.reshape(len(di), len(gi), 1)
    return ious


def summed_intersections(frames: np.ndarray, dets: TrackSet, gts: TrackSet) -> np.ndarray:
    """``int64[D, G]``: mask intersections summed over the frames both tracks have, from their :func:`frame_ious`."""
    num_frames = frames.shape[2]
    area_sum = dets.areas[:, None, :num_frames] + gts.areas[None, :, :num_frames]
    return np.rint(frames * area_sum / (1.0 + frames)).astype(np.int64).sum(axis=2)


def _check_frame_sizes(dets: TrackSet, gts: TrackSet, video_id) -> None:
    if dets.frame_size and gts.frame_size and dets.frame_size != gts.frame_size:
        raise DatasetError(f"video {video_id!r}: predicted masks are {dets.frame_size[0]} x {dets.frame_size[1]}, "
                           f"ground-truth masks {gts.frame_size[0]} x {gts.frame_size[1]}")


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
