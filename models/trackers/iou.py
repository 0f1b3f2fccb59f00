"""The ``iou`` tracker: instance-level linking by overlap (the paper's baseline), DeepSORT style.

Frame by frame, active tracks are matched one-to-one to the frame's detections
by the Hungarian assignment on a similarity in ``[0, 1]``::

    similarity = mask_weight * maskIoU(track's last mask, detection mask)
               + (1 - mask_weight) * boxIoU(track's predicted box, detection box)

times ``class_mismatch_scale`` when the detection's class differs from the
track's majority class (classes are noisy, so a mismatch may still link).
The predicted box is the last matched box shifted by the track's
constant-velocity motion (centre displacement per frame between its last two
matches), which carries a track across missed frames where its last mask no
longer overlaps. Pairs below ``min_similarity`` never link. Unmatched
detections start tracks; a track that has missed more than ``max_age``
consecutive frames ends. Tracks with fewer than ``min_length`` frames with a
mask are dropped at the end. With ``proposals.detect_every`` the frames the
detector skipped neither age a track nor stay empty between two of its
matches: they get the earlier mask moved along the way (linear interpolation of
the centre).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator, Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

from tubelets import masks
from tubelets.models.setting_checks import FRACTION, POSITIVE_FRACTION, check_settings, count_from
from tubelets.models.trackers.base import FrameSource, Tracker, register_tracker
from tubelets.models.tubelet_ops import box_iou, finalize_tubelet, frame_of, majority_label, number_tubelets
from tubelets.records import FrameDetections, Tubelet, TubeletFrame, VideoProposals


@dataclasses.dataclass(eq=False)  # identity: tracks are compared as objects
class _Track:
    """One instance being followed: its linked frames, class votes and centre velocity (px/frame)."""

    serial: int  # creation order, for stable tubelet ids
    frames: list[TubeletFrame]
    labels: list[int]
    scores: list[float]
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))

    @classmethod
    def start(cls, serial: int, detections: FrameDetections, index: int) -> "_Track":
        """A new track from detection ``index`` of one frame."""
        item = frame_of(detections, index)
        return cls(serial, [item], [int(detections.labels[index])], [item.score])

    @property
    def last(self) -> TubeletFrame:
        return self.frames[-1]

    @property
    def label(self) -> int:
        return majority_label(self.labels, self.scores)

    def predicted_box(self, frame: int) -> np.ndarray:
        """The last box moved at constant velocity to ``frame``: ``float64 [4]``, x1 y1 x2 y2."""
        shift = self.velocity * (frame - self.last.frame)
        return np.asarray(self.last.box, dtype=np.float64) + np.tile(shift, 2)

    def extend(self, item: TubeletFrame, label: int, skipped: frozenset[int]) -> None:
        """Link ``item`` (a later frame) and update the velocity from the centre displacement.

        The frames in between that the detector skipped (``skipped``, with
        ``proposals.detect_every``) get the last mask moved along the way;
        frames it looked at and did not find the object in stay gaps.
        """
        start = self.last
        gap = item.frame - start.frame
        self.velocity = (_centre(item.box) - _centre(start.box)) / gap
        self.frames += [_moved(start, item, frame) for frame in range(start.frame + 1, item.frame) if frame in skipped]
        self.frames.append(item)
        self.labels.append(label)
        self.scores.append(item.score)


def _moved(start: TubeletFrame, end: TubeletFrame, frame: int) -> TubeletFrame:
    """``start``'s mask and box moved toward ``end`` in proportion to the frames from ``start`` to ``frame``."""
    step = (_centre(end.box) - _centre(start.box)) * (frame - start.frame) / (end.frame - start.frame)
    dx, dy = (int(v) for v in np.rint(step))
    box = (np.asarray(start.box, np.float64) + np.tile([dx, dy], 2)).astype(np.float32)
    return TubeletFrame(frame, masks.shift(start.mask, dx, dy), box, (start.score + end.score) / 2)


def _centre(box: np.ndarray) -> np.ndarray:
    box = np.asarray(box, dtype=np.float64)
    return (box[:2] + box[2:]) / 2


@register_tracker("iou")
@dataclasses.dataclass(frozen=True, kw_only=True)
class IouTracker(Tracker):
    """Mask/box IoU linking with a motion prior; see the module docstring for the rule.

    The settings are the ``tracker.iou`` config keys, with no defaults here:
    ``IouTracker(**tubelets.config.defaults("tracker.iou"))`` is the shipped one.
    """

    max_age: int  # consecutive missed frames a track survives (frames the detector ran on)
    min_length: int  # tracks with fewer masked frames are dropped (1 keeps all: AP rewards recall)
    min_similarity: float  # pairs below never link
    mask_weight: float  # share of mask IoU in the similarity, the rest is box IoU
    class_mismatch_scale: float  # similarity factor when the classes differ

    def __post_init__(self) -> None:
        check_settings(vars(self), _RULES, "tracker.iou.")

    def track(self, proposals: VideoProposals, frames: Optional[FrameSource] = None) -> list[Tubelet]:
        """Tubelets of one video; ``frames`` is not used."""
        _check_frame_order(proposals)
        active: list[_Track] = []
        ended: list[_Track] = []
        serials = itertools.count()
        # Ages count the frames the detector looked at (all of them unless proposals.detect_every skips some).
        detected = list(itertools.accumulate(int(d.detected) for d in proposals.frames))
        skipped = frozenset(d.frame for d in proposals.frames if not d.detected)
        for detections in proposals.frames:
            if not detections.detected:
                continue
            # A track last seen at frame f has missed the detected frames after f and before this one.
            alive = [t for t in active if detected[detections.frame] - detected[t.last.frame] - 1 <= self.max_age]
            ended.extend(t for t in active if t not in alive)
            active = alive + self._step(alive, detections, serials, skipped)
        return self._finalize(ended + active)

    def _step(self, tracks: list[_Track], detections: FrameDetections, serials: Iterator[int],
              skipped: frozenset[int]) -> list[_Track]:
        """Extend ``tracks`` with their matches in one frame; returns the tracks the rest start."""
        matched: set[int] = set()
        for track_index, detection_index in self._associate(tracks, detections):
            label = int(detections.labels[detection_index])
            tracks[track_index].extend(frame_of(detections, detection_index), label, skipped)
            matched.add(detection_index)
        return [_Track.start(next(serials), detections, i) for i in range(len(detections)) if i not in matched]

    def _associate(self, tracks: list[_Track], detections: FrameDetections) -> list[tuple[int, int]]:
        """Hungarian matching on the gated similarity: ``(track index, detection index)`` pairs."""
        if not tracks or not len(detections):
            return []
        similarity = self.similarity(tracks, detections)
        # Gated pairs score 0, so they cannot push an allowed pair out of the optimum.
        gated = np.where(similarity >= self.min_similarity, similarity, 0.0)
        rows, cols = linear_sum_assignment(gated, maximize=True)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if similarity[r, c] >= self.min_similarity]

    def similarity(self, tracks: list[_Track], detections: FrameDetections) -> np.ndarray:
        """``float64 [T, D]`` similarity of each track to each detection of ``detections.frame``."""
        mask_iou = masks.iou_matrix([t.last.mask for t in tracks], detections.masks)
        predicted = np.stack([t.predicted_box(detections.frame) for t in tracks])
        similarity = self.mask_weight * mask_iou + (1 - self.mask_weight) * box_iou(predicted, detections.boxes)
        track_labels = np.asarray([t.label for t in tracks])
        mismatch = track_labels[:, None] != np.asarray(detections.labels)[None, :]
        return np.where(mismatch, similarity * self.class_mismatch_scale, similarity)

    def _finalize(self, tracks: list[_Track]) -> list[Tubelet]:
        """Tubelets of the tracks with at least ``min_length`` masks, numbered by first frame then creation."""
        tubelets = []
        for track in sorted(tracks, key=lambda t: t.serial):
            tubelet = finalize_tubelet(track.serial, track.frames, track.labels, track.scores)
            if tubelet is not None and len(tubelet.frames) >= self.min_length:
                tubelets.append(tubelet)
        return number_tubelets(tubelets)


_RULES = {
    "max_age": count_from(0),
    "min_length": count_from(1),
    "min_similarity": POSITIVE_FRACTION,  # 0 would link disjoint pairs
    "mask_weight": FRACTION,
    "class_mismatch_scale": FRACTION,
}


def _check_frame_order(proposals: VideoProposals) -> None:
    numbers = [detections.frame for detections in proposals.frames]
    if any(later <= earlier for earlier, later in zip(numbers, numbers[1:])):
        raise ValueError(f"video {proposals.meta.key!r}: proposals must be in increasing frame order, got {numbers}")
