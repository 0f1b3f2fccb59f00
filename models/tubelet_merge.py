"""Tubelet merging (IPDT step 4): tubelets that follow one object become one.

A tracker that extends every kept proposal through the video produces
several tubelets per object. Two tubelets are the same object when their
*temporal mask IoU* - the mask IoU averaged over the frames where both have
a mask - exceeds ``th_seq``. Candidates are visited by descending score and
each joins the first kept group whose leader (its highest-scored member)
matches it, so:

* the higher-scored tubelet is kept: in every frame where the leader has a
  mask, the merged tubelet has the leader's mask; frames only a lower-scored
  member covers are filled from the best such member (a fragment lost in an
  occlusion thus adds nothing the leader has, and keeps what it lacks);
* the class is the most frequent vote over all members (ties: summed score,
  then the smaller id; :func:`tubelet_ops.majority_label`);
* the score is the mean (re-weighted) per-frame score over frames with a
  valid mask (:func:`tubelet_ops.finalize_tubelet`).

Frames where the two tubelets never coexist say nothing about identity, so
they do not dilute the average; two tubelets with no shared frame never merge.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional

import numpy as np

from tubelets import masks
from tubelets.models.tubelet_ops import finalize_tubelet, number_tubelets
from tubelets.records import Tubelet, TubeletFrame


@dataclasses.dataclass
class TubeletCandidate:
    """A tracker's tubelet before merging: its frames (one per frame number) and its class votes."""

    frames: dict[int, TubeletFrame]
    labels: list[int]
    scores: list[float]

    @property
    def score(self) -> float:
        """Mean per-frame score over frames with a non-empty mask (0 when none)."""
        valid = [item.score for item in self.frames.values() if masks.area(item.mask) > 0]
        return float(np.mean(valid)) if valid else 0.0


def temporal_iou(a: TubeletCandidate, b: TubeletCandidate) -> float:
    """Mask IoU averaged over the frames where both have a mask; 0.0 with no shared frame."""
    shared = sorted(set(a.frames) & set(b.frames))
    if not shared:
        return 0.0
    ious = [masks.iou_matrix([a.frames[f].mask], [b.frames[f].mask])[0, 0] for f in shared]
    return float(np.mean(ious))


def group_candidates(candidates: Iterable[TubeletCandidate], th_seq: float) -> list[list[TubeletCandidate]]:
    """Groups of candidates, each led by its highest-scored member, members in descending score."""
    ordered = sorted(candidates, key=lambda c: c.score, reverse=True)  # stable: ties keep tracker order
    groups: list[list[TubeletCandidate]] = []
    for candidate in ordered:
        home = next((group for group in groups if temporal_iou(group[0], candidate) > th_seq), None)
        if home is None:
            groups.append([candidate])
        else:
            home.append(candidate)
    return groups


def merge_group(group: list[TubeletCandidate], tubelet_id: int) -> Optional[Tubelet]:
    """One tubelet from a group (members in descending score); None when no frame has a mask."""
    frames: dict[int, TubeletFrame] = {}
    for member in group:
        for number, item in member.frames.items():
            if number not in frames and masks.area(item.mask) > 0:
                frames[number] = item
    labels = [label for member in group for label in member.labels]
    scores = [score for member in group for score in member.scores]
    if not frames or not labels:
        return None
    return finalize_tubelet(tubelet_id, list(frames.values()), labels, scores)


def merge_tubelets(candidates: Iterable[TubeletCandidate], th_seq: float) -> list[Tubelet]:
    """Merged tubelets, numbered ``0 .. n-1`` by first frame (see the module docstring)."""
    if not 0.0 <= th_seq <= 1.0:
        raise ValueError(f"th_seq must be in [0, 1], got {th_seq!r}")
    merged = [merge_group(group, index) for index, group in enumerate(group_candidates(candidates, th_seq))]
    return number_tubelets(t for t in merged if t is not None)
