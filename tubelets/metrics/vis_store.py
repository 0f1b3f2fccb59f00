"""Per-video matches as rows of the ``video_matches`` table, and back.

An ``evaluate`` run stores each video's :class:`VideoMatches` (a few KB: the
kept predictions' categories, scores, ranks and TP/FP flags at every area range
and IoU threshold, and the ground truth's counts). That is all the accumulation
needs, so a run's metrics, comparing two runs, a bootstrap over their videos,
per-video AP or precision-recall curves never read a mask again.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from tubelets.metrics.vis_match import NUM_AREAS, NUM_THRESHOLDS, VideoMatches


def matches_to_row(matches: VideoMatches, video: str) -> dict:
    """One row of ``tubelets.tables.VIDEO_MATCHES`` (``run_id`` is added by the writer)."""
    return {
        "video": video,
        "video_id": int(matches.video_id),
        "det_category": matches.det_category.astype(np.int64).tolist(),
        "det_score": matches.det_score.astype(np.float64).tolist(),
        "det_rank": matches.det_rank.astype(np.int32).tolist(),
        # bool[A, T, N] flattened in C order; A and T are the protocol's (vis_params), N the kept predictions.
        "det_tp": np.asarray(matches.det_tp, bool).ravel().tolist(),
        "det_fp": np.asarray(matches.det_fp, bool).ravel().tolist(),
        "gt_category": matches.gt_category.astype(np.int64).tolist(),
        "gt_valid": matches.gt_valid.astype(np.int64).ravel().tolist(),  # int64[C, A] flattened
        "num_gt": int(matches.num_gt),
        "num_predictions": int(matches.num_predictions),
    }


def row_to_matches(row: Mapping) -> VideoMatches:
    """The :class:`VideoMatches` a row of ``video_matches`` stores (the inverse of :func:`matches_to_row`)."""
    detections = len(row["det_category"])
    flags = (NUM_AREAS, NUM_THRESHOLDS, detections)
    return VideoMatches(
        video_id=int(row["video_id"]),
        det_category=np.asarray(row["det_category"], np.int64),
        det_score=np.asarray(row["det_score"], np.float64),
        det_rank=np.asarray(row["det_rank"], np.int32),
        det_tp=np.asarray(row["det_tp"], bool).reshape(flags),
        det_fp=np.asarray(row["det_fp"], bool).reshape(flags),
        gt_category=np.asarray(row["gt_category"], np.int64),
        gt_valid=np.asarray(row["gt_valid"], np.int64).reshape(len(row["gt_category"]), NUM_AREAS),
        num_gt=int(row["num_gt"]),
        num_predictions=int(row["num_predictions"]),
    )
