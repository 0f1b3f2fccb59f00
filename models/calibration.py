"""Class calibration (IPDT step 2): trust the classes the whole video agrees on.

A per-frame detector often labels one object with several classes, and a
wrong class usually comes with low scores scattered over a few frames. The
video as a whole is the better judge, so, per video:

1. candidates scoring below ``score_threshold`` are dropped;
2. each class's mean score over the remaining candidates of the video is
   computed; a class whose mean is above ``th_cc`` is *reliable*;
3. candidates of the other classes keep their place but their scores are
   multiplied by ``beta``, so they rank below every reliable candidate;
4. in each frame, a candidate whose mask IoU with a higher (re-weighted)
   scored candidate exceeds ``th_iou`` is dropped, whatever the classes:
   Mask R-CNN suppresses duplicates per class only, so one object may still
   carry two masks of two classes, and the re-weighted score picks the class.

The settings are the ``calibration:`` config section, with no defaults here
(``configs/default.yaml`` holds them: ``tubelets.config.defaults("calibration")``).
The values, and why:

* ``score_threshold=0.2``: low enough to keep the recall VIS AP rewards,
  high enough to drop the flood of near-zero Mask R-CNN candidates.
* ``th_cc=0.5`` (the paper's, ``--config paper``): a true class is usually
  detected with confidence in most frames, so its mean sits well above 0.5,
  while spurious classes live between the 0.2 floor and about 0.4. The
  threshold belongs to the detector: the shipped ``detector-small`` scores
  true classes lower, and the defaults use ``th_cc: 0.3``, chosen on
  validation sets (see ``configs/default.yaml``).
* ``beta=0.1``: a re-weighted candidate (score <= ``th_cc``, so <= 0.05
  after) ranks below every candidate of a reliable class, yet it is kept,
  so a real object of a rare class still yields a low-ranked tubelet.
* ``th_iou=0.5``: the usual mask NMS overlap; two masks overlapping more
  than half are one object in practice.

With ``enabled=False`` (the ablation) only step 1 applies.

**Other classes.** Step 4 leaves one class per object and frame, and a
tracker gives a tubelet its frames' majority class; when the detector
hesitates between two classes all through a video, the runner-up scores in
most frames yet wins few. :func:`add_other_classes` lets a tubelet also
compete under up to ``other_classes`` such classes (``Tubelet.other_classes``;
one results entry each, as VIS methods that emit their top classes per
instance do), scored by the candidates of step 3 that overlap its masks. An
extra entry of the wrong class is a false positive ranked as low as its
score; of the right class, a track found.

The result is a :class:`CalibratedProposals`: a ``VideoProposals`` that also
records the class means, the reliable classes and what was dropped, so a
pipeline can log them and hand the same object to a tracker.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Iterable

import numpy as np

from tubelets import masks
from tubelets.models.setting_checks import FRACTION, check_settings, count_from
from tubelets.records import FrameDetections, Tubelet, VideoProposals


@dataclasses.dataclass(kw_only=True)
class CalibratedProposals(VideoProposals):
    """Calibrated proposals of one video, with what calibration decided (for logging)."""

    class_means: dict[int, float] = dataclasses.field(default_factory=dict)  # over candidates above the threshold
    reliable: frozenset[int] = frozenset()  # classes kept at full weight (every class when disabled)
    dropped_low_score: int = 0  # candidates below the score threshold
    dropped_duplicates: int = 0  # candidates removed by the per-frame mask IoU test
    candidates: list[FrameDetections] = dataclasses.field(default_factory=list)  # per frame, after step 3 (not 4)
    th_iou: float  # the overlap that makes two masks one object (calibration.th_iou)
    other_classes: int  # see add_other_classes (calibration.other_classes)


def calibrate_classes(
    proposals: VideoProposals,
    *,
    enabled: bool,
    score_threshold: float,
    th_cc: float,
    beta: float,
    th_iou: float,
    other_classes: int,
) -> CalibratedProposals:
    """Calibrate one video's proposals (see the module docstring); the input is not changed.

    The keywords are the ``calibration:`` config section, so a pipeline calls
    ``calibrate_classes(proposals, **config["calibration"])``. When enabled,
    each frame's detections come back sorted by descending re-weighted score;
    disabled, they keep their order.
    """
    settings = {"score_threshold": score_threshold, "th_cc": th_cc, "beta": beta, "th_iou": th_iou,
                "other_classes": other_classes}
    check_settings(settings, _RULES, "calibration.")
    kept = [detections.select(detections.scores >= score_threshold) for detections in proposals.frames]
    means = class_means(kept)
    reliable = frozenset(label for label, mean in means.items() if mean > th_cc or not enabled)
    candidates = calibrated = kept
    if enabled:
        candidates = [_reweight(detections, reliable, beta) for detections in kept]
        calibrated = [_drop_duplicates(detections, th_iou) for detections in candidates]
    return CalibratedProposals(
        proposals.meta,
        calibrated,
        class_means=means,
        reliable=reliable,
        dropped_low_score=_count(proposals.frames) - _count(kept),
        dropped_duplicates=_count(kept) - _count(calibrated),
        candidates=candidates,
        th_iou=th_iou,
        other_classes=other_classes,
    )


def add_other_classes(tubelets: Iterable[Tubelet], calibrated: CalibratedProposals) -> list[Tubelet]:
    """The tubelets with ``other_classes`` set: up to ``calibrated.other_classes`` other classes, best first.

    A class scores, in each frame of a tubelet, the highest re-weighted score
    of a candidate of that class whose mask overlaps the tubelet's there
    (mask IoU > ``th_iou``), 0 where none does; its score is the mean over
    the tubelet's frames. The tubelet's own class and classes that score
    nothing are left out; ties go to the smaller id.
    """
    tubelets = list(tubelets)
    if calibrated.other_classes == 0:
        return tubelets
    scored = []
    for tubelet in tubelets:
        totals: Counter[int] = Counter()
        for item in tubelet.frames:
            totals.update(_best_overlapping(item.mask, calibrated.candidates[item.frame], calibrated.th_iou))
        totals.pop(tubelet.category_id, None)
        ranked = sorted(totals.items(), key=lambda pair: (-pair[1], pair[0]))[:calibrated.other_classes]
        other = [(label, total / len(tubelet.frames)) for label, total in ranked if total > 0]
        scored.append(dataclasses.replace(tubelet, other_classes=other))
    return scored


def _best_overlapping(mask: masks.JsonRle, candidates: FrameDetections, th_iou: float) -> dict[int, float]:
    """``{label: score}``: each class's best score among the ``candidates`` overlapping ``mask`` (IoU > ``th_iou``)."""
    best: dict[int, float] = {}
    if not len(candidates):
        return best
    overlaps = masks.iou_matrix([mask], candidates.masks)[0]
    for index in np.flatnonzero(overlaps > th_iou):
        label = int(candidates.labels[index])
        best[label] = max(best.get(label, 0.0), float(candidates.scores[index]))
    return best


def class_means(frames: Iterable[FrameDetections]) -> dict[int, float]:
    """Mean score of each class over every candidate of the given frames."""
    frames = list(frames)
    labels = np.concatenate([np.zeros(0, np.int64)] + [np.asarray(f.labels, np.int64) for f in frames])
    scores = np.concatenate([np.zeros(0, np.float64)] + [np.asarray(f.scores, np.float64) for f in frames])
    unique, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=scores, minlength=len(unique))
    return {int(label): float(total / count) for label, total, count in zip(unique, sums, counts)}


def _reweight(detections: FrameDetections, reliable: frozenset[int], beta: float) -> FrameDetections:
    """A copy whose candidates of unreliable classes have their score times ``beta``."""
    is_reliable = np.isin(detections.labels, list(reliable))
    scores = np.where(is_reliable, detections.scores, detections.scores * beta).astype(np.float32)
    return dataclasses.replace(detections, scores=scores)


def _drop_duplicates(detections: FrameDetections, th_iou: float) -> FrameDetections:
    """Greedy class-agnostic mask NMS: keep a candidate unless a kept, higher one overlaps it > ``th_iou``."""
    order = np.argsort(-detections.scores, kind="stable")
    overlaps = masks.iou_matrix(detections.masks, detections.masks)
    kept: list[int] = []
    for index in order:
        if not kept or overlaps[index, kept].max() <= th_iou:
            kept.append(int(index))
    return detections.select(np.asarray(kept, dtype=np.int64))


# Every threshold and weight is a fraction.
_RULES = {**{name: FRACTION for name in ("score_threshold", "th_cc", "beta", "th_iou")}, "other_classes": count_from(0)}


def _count(frames: Iterable[FrameDetections]) -> int:
    return sum(len(detections) for detections in frames)
