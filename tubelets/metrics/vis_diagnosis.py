"""Where a VIS result loses AP: its ranking, its classes, or its tubelets themselves.

A tracker is judged by AP, but AP mixes three things a tracker controls very
differently: how well each tubelet follows its object (the tubelet), which
category it says (mostly the detector's votes), and how it is ranked (its
score). :func:`diagnose` scores the same tubelets four times:

* as they are;
* ``oracle scores``: each tubelet's score replaced by its best video IoU
  with any ground-truth track of its video (the ranking a perfect scorer
  would give these tubelets);
* ``oracle classes``: a tubelet whose best video IoU reaches 0.5 takes that
  track's category (below 0.5 it cannot be a true positive at any of AP's
  thresholds, so its category is left);
* both oracles: what these tubelets are worth when only their masks count.

The oracles and the decomposition judge tubelets: entries with the same
masks in one video (a tubelet's other classes, each an entry of its own)
count once, as the highest-scored of them; only the real AP counts them all.

It counts the tracks found: those whose best tubelet (any category) reaches
video IoU 0.5, and those that an entry of their own category does (a track
found but not in its category was lost to the class). It also decomposes,
for every ground-truth track, the union of its best tubelet (any category)
with it: frames the tubelet missed, frames it has
where the track is absent (extra), and the imperfect overlap of the frames
both have. Shares are of the summed unions, so they add up to ``1 - IoU``.

A track is *split* when, besides the tubelet that follows it in most frames
(mask IoU >= 0.5 there), another tubelet follows it in at least
``SPLIT_FRAMES`` frames the first does not: the object's frames are shared
between tubelets instead of held by one, and AP credits only one of them.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from tubelets.metrics.vis import evaluate
from tubelets.metrics.vis_data import group_results, index_ground_truth
from tubelets.metrics.vis_iou import frame_ious, summed_intersections, video_iou
from tubelets.metrics.vis_tracks import ground_truth_tracks, prediction_tracks

ORACLE_CLASS_IOU = 0.5  # the lowest IoU threshold of AP: below it a tubelet is never a true positive
FOLLOW_IOU = 0.5  # a tubelet follows a track in a frame where their masks overlap this much
SPLIT_FRAMES = 3  # frames of a track another tubelet must follow alone to split it (one or two are strays)


@dataclasses.dataclass(frozen=True)
class FrameShares:
    """Shares of the summed union of every ground-truth track with its best tubelet (in ``[0, 1]``)."""

    iou: float  # summed intersection / summed union
    missed: float  # union from frames only the track has
    extra: float  # union from frames only the tubelet has
    overlap: float  # union from frames both have, minus their intersection
    tracks_found: float  # share of tracks whose best tubelet reaches video IoU 0.5
    tracks_found_in_class: float  # share of tracks a results entry of their category reaches video IoU 0.5 with
    tracks_split: float  # share of tracks another tubelet follows apart from their main one (module docstring)


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """AP (in ``[0, 1]``) of a result as is and under the oracles, and the frame decomposition."""

    ap: dict  # {"real" | "oracle scores" | "oracle classes" | "oracle both": {"AP", "AP50", "AP75"}}
    frames: FrameShares


def diagnose(gt: dict, results: list) -> Diagnosis:
    """The diagnosis of ``results`` (YouTube-VIS results entries) against ``gt`` (see the module docstring)."""
    index = index_ground_truth(gt)
    tubelets, categories = one_entry_per_tubelet(results)
    by_video = group_results(tubelets, index)
    best_iou: dict[int, float] = {}  # id(result) -> best video IoU with any track of its video
    best_category: dict[int, int] = {}
    totals = np.zeros(4)  # intersection, missed, extra, overlap union
    found = found_in_class = split = 0
    for video_id, predictions in by_video.items():
        annotations = index.annotations_by_video.get(video_id, [])
        if not annotations:
            continue
        video = index.videos[video_id]
        dets = _any_category(prediction_tracks(predictions, video, "results"))
        gts = _any_category(ground_truth_tracks(annotations, video, "ground truth"))
        frames = frame_ious(dets, gts, video_id)  # once for the video IoUs, the union parts and the splits
        ious = video_iou(dets, gts, video_id, frames)
        # A tubelet's entries share its masks, so its video IoUs hold for each category it has an entry of.
        in_class = np.array([[annotation["category_id"] in categories[id(prediction)] for annotation in annotations]
                             for prediction in predictions], dtype=bool)
        found_in_class += int(((ious >= 0.5) & in_class).any(axis=0).sum())
        for row, prediction in enumerate(predictions):
            column = int(ious[row].argmax())
            best_iou[id(prediction)] = float(ious[row, column])
            best_category[id(prediction)] = int(annotations[column]["category_id"])
        best = ious.argmax(axis=0)
        best_intersections = summed_intersections(frames, dets, gts)[best, np.arange(len(gts))]
        totals += _union_parts(dets.take(best), gts, best_intersections)
        found += int((ious.max(axis=0) >= 0.5).sum())
        split += _split_tracks(frames >= FOLLOW_IOU)
    tracks = sum(len(track_list) for track_list in index.annotations_by_video.values())
    totals += [0, _unmatched_area(index, by_video), 0, 0]
    union = totals.sum()
    variants = {
        "real": results,
        "oracle scores": [{**r, "score": best_iou.get(id(r), 0.0)} for r in tubelets],
        "oracle classes": [_oracle_class(r, best_iou, best_category) for r in tubelets],
        "oracle both": [{**_oracle_class(r, best_iou, best_category), "score": best_iou.get(id(r), 0.0)}
                        for r in tubelets],
    }
    ap = {}
    for name, entries in variants.items():
        stats = evaluate(gt, entries).stats
        ap[name] = {k: stats[k] for k in ("AP", "AP50", "AP75")}
    shares = totals / union if union else np.zeros(4)
    return Diagnosis(ap, FrameShares(iou=float(shares[0]), missed=float(shares[1]), extra=float(shares[2]),
                                     overlap=float(shares[3]), tracks_found=found / tracks if tracks else 0.0,
                                     tracks_found_in_class=found_in_class / tracks if tracks else 0.0,
                                     tracks_split=split / tracks if tracks else 0.0))


def one_entry_per_tubelet(results: list) -> tuple[list, dict[int, set]]:
    """The highest-scored of each set of entries with the same video and masks, and the categories of each set.

    The entries come in the order of the first of each set; the categories are
    keyed by ``id()`` of the entry kept.
    """
    best: dict[tuple, dict] = {}
    categories: dict[tuple, set] = {}
    for entry in results:
        key = (entry["video_id"], json.dumps(entry["segmentations"], sort_keys=True, default=str))
        categories.setdefault(key, set()).add(entry["category_id"])
        if key not in best or entry["score"] > best[key]["score"]:
            best[key] = entry
    return list(best.values()), {id(best[key]): categories[key] for key in best}


def _any_category(tracks):
    """The tracks with one shared category, so that :func:`video_iou` pairs every prediction with every track."""
    return dataclasses.replace(tracks, category=np.zeros_like(tracks.category))


def _split_tracks(follows: np.ndarray) -> int:
    """How many tracks are split, from ``bool[D, G, F]`` (tubelet ``d`` follows track ``g`` in frame ``f``)."""
    main = follows[follows.sum(axis=2).argmax(axis=0), np.arange(follows.shape[1])]  # [G, F]
    alone = (follows & ~main).sum(axis=2)  # [D, G]: frames each tubelet follows a track in that its main one does not
    return int((alone >= SPLIT_FRAMES).any(axis=0).sum())


def _oracle_class(result: dict, best_iou: dict, best_category: dict) -> dict:
    if best_iou.get(id(result), 0.0) >= ORACLE_CLASS_IOU:
        return {**result, "category_id": best_category[id(result)]}
    return result


def _union_parts(dets, gts, inter: np.ndarray) -> np.ndarray:
    """``[intersection, missed, extra, overlap]`` pixel sums of each track ``g`` with tubelet ``dets[g]``.

    ``inter``: ``int64[G]``, the summed intersection of each such pair.
    """
    inter = inter.astype(np.float64)
    frames = min(dets.areas.shape[1], gts.areas.shape[1])
    det_areas, gt_areas = dets.areas[:, :frames], gts.areas[:, :frames]
    both = (det_areas > 0) & (gt_areas > 0)
    missed = np.where(det_areas == 0, gt_areas, 0).sum() + gts.areas[:, frames:].sum()
    extra = np.where(gt_areas == 0, det_areas, 0).sum() + dets.areas[:, frames:].sum()
    overlap = np.where(both, det_areas + gt_areas, 0).sum() - inter.sum() * 2
    return np.array([inter.sum(), missed, extra, overlap], dtype=np.float64)


def _unmatched_area(index, by_video: dict) -> float:
    """Summed area of the tracks of videos without any prediction (all missed)."""
    total = 0.0
    for video_id, tracks in index.annotations_by_video.items():
        if video_id not in by_video:
            total += ground_truth_tracks(tracks, index.videos[video_id], "ground truth").areas.sum()
    return total
