"""YouTube-VIS metrics (AP, AP50, AP75, APs/m/l, AR1/10/100, ARs/m/l), exactly as
the official ``youtubevos/cocoapi`` evaluator computes them.

``evaluate(gt, results)`` scores dicts, ``score_files(gt_url, results_url)`` files
(any fsspec URL). A pipeline can instead call ``vis_match.match_video`` per video
and ``accumulate`` once. The protocol's details are listed in ``vis_params``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import fsspec
import numpy as np

from tubelets.errors import DatasetError
from tubelets.metrics.vis_data import group_results, index_ground_truth
from tubelets.metrics.vis_match import VideoMatches, match_video
from tubelets.metrics.vis_params import (AREA_LABELS, AREA_RANGES, IOU_THRESHOLDS, MAX_DETS, METRIC_NAMES,
                                         RECALL_THRESHOLDS, SUMMARY)

__all__ = ["METRIC_NAMES", "VisMetrics", "VideoMatches", "accumulate", "evaluate", "match_video", "match_videos",
           "score_files", "summarize"]


@dataclass
class VisMetrics:
    """Scores of a results set; -1 marks a number without ground truth to score.

    ``stats``: the 12 summary numbers, keyed by ``METRIC_NAMES``.
    ``per_category`` / ``per_category_ap50``: AP and AP50 of each category that
    has non-ignored ground truth (others are left out, as from the means).
    ``precision``: float64[T, R, K, A, M] and ``recall``: float64[T, K, A, M]
    (IoU thresholds, recall points, ``category_ids``, area ranges, max detections).
    """

    stats: dict
    per_category: dict
    per_category_ap50: dict
    num_videos: int
    num_gt: int
    num_predictions: int
    category_ids: tuple
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)

    def __getitem__(self, name: str) -> float:
        return self.stats[name]

    def to_dict(self) -> dict:
        """JSON-ready: the 12 numbers, per-category AP/AP50 and the counts."""
        return {
            **self.stats,
            "per_category": {str(k): {"AP": ap, "AP50": self.per_category_ap50[k]}
                             for k, ap in self.per_category.items()},
            "videos": self.num_videos,
            "gt_instances": self.num_gt,
            "predictions": self.num_predictions,
        }


def evaluate(gt: dict, results: list, gt_source: str = "ground truth", results_source: str = "results") -> VisMetrics:
    """Score YouTube-VIS ``results`` against the ground truth ``gt`` (see ``vis_data``)."""
    matches, category_ids = match_videos(gt, results, gt_source, results_source)
    return accumulate(matches, category_ids)


def match_videos(gt: dict, results: list, gt_source: str = "ground truth",
                 results_source: str = "results") -> tuple[list[VideoMatches], tuple]:
    """Every ground-truth video's matches (in ascending video id) and the ground truth's category ids."""
    index = index_ground_truth(gt, gt_source)
    by_video = group_results(results, index, results_source)
    try:
        matches = [match_video(index.videos[v], index.annotations_by_video.get(v, []), by_video.get(v, []))
                   for v in index.video_ids]
    except DatasetError as err:
        raise DatasetError(f"{results_source} against {gt_source}: {err}") from err
    return matches, index.category_ids


def score_files(gt_url: str, results_url: str) -> dict:
    """``evaluate`` on two JSON files (local paths or fsspec URLs); ``VisMetrics.to_dict()``."""
    gt, results = load_json(gt_url, "ground truth"), load_json(results_url, "results")
    return evaluate(gt, results, gt_source=gt_url, results_source=results_url).to_dict()


def load_json(url: str, what: str):
    try:
        with fsspec.open(url, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as err:
        raise DatasetError(f"{what} file {url!r} does not exist") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{what} file {url!r} is not valid JSON: {err}") from err


def accumulate(matches: Iterable[VideoMatches], category_ids: Sequence | None = None) -> VisMetrics:
    """Combine per-video matches into the metrics.

    ``category_ids``: the ground truth's categories (default: those seen in
    ``matches``; categories without ground truth do not change any number).
    """
    matches = sorted(matches, key=lambda m: m.video_id)  # the official order of videos
    video_ids = [m.video_id for m in matches]
    if len(set(video_ids)) != len(video_ids):
        raise ValueError(f"accumulate got the same video twice: {sorted(video_ids)}")
    seen = [c for m in matches for c in (*m.gt_category.tolist(), *m.det_category.tolist())]
    cats = np.array(sorted(set(seen if category_ids is None else category_ids)), dtype=np.int64)
    shape = (len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(cats), len(AREA_RANGES), len(MAX_DETS))
    precision, recall = -np.ones(shape), -np.ones(shape[:1] + shape[2:])
    gt_valid = _gt_valid_per_category(matches, cats)
    dets = _concatenate_detections(matches, cats)
    order = np.argsort(dets["category"], kind="stable")  # keeps video order within a category
    lo, hi = (np.searchsorted(dets["category"][order], cats, side=side) for side in ("left", "right"))
    for k in np.flatnonzero(gt_valid.any(axis=1)):
        sel = order[lo[k]:hi[k]]
        _accumulate_category(dets["score"][sel], dets["rank"][sel], dets["tp"][:, :, sel], dets["fp"][:, :, sel],
                             gt_valid[k], precision[:, :, k], recall[:, k])
    per_category, per_category_ap50 = _per_category(precision, cats)
    return VisMetrics(stats=summarize(precision, recall), per_category=per_category,
                      per_category_ap50=per_category_ap50, num_videos=len(matches),
                      num_gt=sum(m.num_gt for m in matches), num_predictions=sum(m.num_predictions for m in matches),
                      category_ids=tuple(cats.tolist()), precision=precision, recall=recall)


def _gt_valid_per_category(matches: Sequence[VideoMatches], cats: np.ndarray) -> np.ndarray:
    """int64[K, A]: non-ignored ground truth per category and area range, over all videos."""
    total = np.zeros((len(cats), len(AREA_RANGES)), dtype=np.int64)
    for m in matches:
        known = np.isin(m.gt_category, cats)
        np.add.at(total, np.searchsorted(cats, m.gt_category[known]), m.gt_valid[known])
    return total


def _concatenate_detections(matches: Sequence[VideoMatches], cats: np.ndarray) -> dict:
    """All videos' predictions of the given categories, in video order."""
    no_flags = np.zeros((len(AREA_RANGES), len(IOU_THRESHOLDS), 0), dtype=bool)

    def joined(name: str, empty: np.ndarray) -> np.ndarray:
        return np.concatenate([empty] + [getattr(m, name) for m in matches], axis=empty.ndim - 1)

    category = joined("det_category", np.zeros(0, np.int64))
    keep = np.isin(category, cats)
    return {"category": category[keep], "score": joined("det_score", np.zeros(0))[keep],
            "rank": joined("det_rank", np.zeros(0, np.int32))[keep],
            "tp": joined("det_tp", no_flags)[:, :, keep], "fp": joined("det_fp", no_flags)[:, :, keep]}


def _accumulate_category(scores, ranks, tp, fp, gt_valid, precision_k, recall_k) -> None:
    """Fill ``precision_k`` (float64[T, R, A, M]) and ``recall_k`` (float64[T, A, M]) of one category.

    ``tp``/``fp``: bool[A, T, N] in video order; ``ranks``: int[N] within (video, category).
    """
    for m, max_det in enumerate(MAX_DETS):
        keep = ranks < max_det
        order = np.argsort(-scores[keep], kind="mergesort")
        tp_cum = np.cumsum(tp[:, :, keep][:, :, order], axis=2).astype(np.float64)
        fp_cum = np.cumsum(fp[:, :, keep][:, :, order], axis=2).astype(np.float64)
        for a in np.flatnonzero(gt_valid > 0):
            precision_k[:, :, a, m], recall_k[:, a, m] = precision_recall(tp_cum[a], fp_cum[a], gt_valid[a])


def precision_recall(tp_cum: np.ndarray, fp_cum: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision float64[T, R] at ``RECALL_THRESHOLDS`` and final recall float64[T].

    ``tp_cum``/``fp_cum``: float64[T, N], cumulative counts over predictions in score order.
    """
    num = tp_cum.shape[1]
    rc = tp_cum / num_gt
    pr = tp_cum / (fp_cum + tp_cum + np.spacing(1))
    final_recall = rc[:, -1] if num else np.zeros(len(rc))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision envelope
    sampled = np.zeros((len(rc), len(RECALL_THRESHOLDS)))
    for t in range(len(rc)):
        idx = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
        reached = idx < num
        sampled[t, reached] = pr[t, idx[reached]]
    return sampled, final_recall


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict:
    """The 12 summary numbers: means of the selected entries > -1 (-1 if none)."""
    stats = {}
    for name, is_ap, iou, area, max_det in SUMMARY:
        a, m = AREA_LABELS.index(area), MAX_DETS.index(max_det)
        values = precision[..., a, m] if is_ap else recall[..., a, m]
        if iou is not None:
            values = values[np.where(iou == IOU_THRESHOLDS)[0]]
        stats[name] = _mean_defined(values)
    return stats


def category_stats(metrics: VisMetrics, index: int) -> dict[str, float]:
    """All 12 numbers of one category (the summary over its slice of the arrays)."""
    return summarize(metrics.precision[:, :, index : index + 1], metrics.recall[:, index : index + 1])


def _per_category(precision: np.ndarray, cats: np.ndarray) -> tuple[dict, dict]:
    """AP and AP50 (area 'all', 100 detections) of each category that has a defined AP."""
    t50 = np.where(IOU_THRESHOLDS == 0.5)[0]
    ap, ap50 = {}, {}
    for k, cat in enumerate(cats.tolist()):
        values = precision[:, :, k, 0, -1]
        if (values > -1).any():
            ap[cat], ap50[cat] = _mean_defined(values), _mean_defined(values[t50])
    return ap, ap50


def _mean_defined(values: np.ndarray) -> float:
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else -1.0
