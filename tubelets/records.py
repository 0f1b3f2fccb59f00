"""Records that cross stage boundaries (proposals -> calibration -> tracking -> tables).

Plain dataclasses of numpy arrays and JSON RLE, so Beam can pickle them and the
trackers need no framework. Conventions, everywhere:

* ``frame`` is the 0-based position in the *decoded* sequence of a video
  (after stride/fps resampling); ``VideoMeta.frame_indices[frame]`` is the
  frame's index in the source file.
* boxes are ``float32 [N, 4]`` as ``x1, y1, x2, y2`` in pixels of the decoded
  frame, ``0 <= x1 < x2 <= W``, ``0 <= y1 < y2 <= H``.
* masks are JSON RLE (``tubelets.masks``) of the decoded frame size.
* category ids are the data set's (1-based); 0 is never a category.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from tubelets.masks import JsonRle


@dataclasses.dataclass
class VideoMeta:
    """One decoded video: its key (input URL or data set video name) and geometry."""

    key: str
    width: int
    height: int
    length: int  # decoded frames
    video_id: Optional[int] = None  # the data set's id, when the input is a data set
    frame_indices: Optional[list[int]] = None  # source index of each decoded frame (None: identity)
    url: Optional[str] = None  # where the frames came from: a video file, or a data set root ("jpeg", "davis")
    source: str = "video"  # "video" | "jpeg" (YouTube-VIS frames) | "davis" (a DAVIS sequence, key = its name)


@dataclasses.dataclass
class FrameDetections:
    """Instances detected in one frame (Mask R-CNN proposals above the score threshold)."""

    frame: int
    boxes: np.ndarray  # float32 [N, 4], x1 y1 x2 y2
    scores: np.ndarray  # float32 [N], the detector's confidence (re-weighted by calibration)
    labels: np.ndarray  # int64 [N], data set category ids
    masks: list[JsonRle]  # N masks
    # False: the detector skipped this frame (``proposals.detect_every``), so its being empty tells nothing about
    # what is there. True and empty: the detector ran and found nothing.
    detected: bool = True

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, frame: int, detected: bool = True) -> "FrameDetections":
        return cls(frame, np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), [], detected)

    def select(self, keep: np.ndarray) -> "FrameDetections":
        """The detections at integer indices (or boolean mask) ``keep``, in that order."""
        index = np.flatnonzero(keep) if keep.dtype == bool else np.asarray(keep, dtype=np.int64)
        return FrameDetections(
            self.frame, self.boxes[index], self.scores[index], self.labels[index], [self.masks[i] for i in index],
            self.detected,
        )


@dataclasses.dataclass
class VideoProposals:
    """Every frame's detections of one video, in frame order (``frames[i].frame == i``)."""

    meta: VideoMeta
    frames: list[FrameDetections]


@dataclasses.dataclass
class TubeletFrame:
    """An instance in one frame of its tubelet."""

    frame: int
    mask: JsonRle
    box: np.ndarray  # float32 [4], x1 y1 x2 y2
    score: float


@dataclasses.dataclass
class Tubelet:
    """One instance through a video: a category, a score and a mask in each frame it is seen.

    ``frames`` is sorted by frame and holds only frames where the instance has a mask.
    ``other_classes`` are ``(category_id, score)`` pairs, best first, of other
    categories the tubelet also competes under in results and metrics (see
    :func:`tubelets.models.calibration.add_other_classes`).
    """

    tubelet_id: int
    category_id: int
    score: float
    frames: list[TubeletFrame]
    other_classes: list[tuple[int, float]] = dataclasses.field(default_factory=list)

    @property
    def first_frame(self) -> int:
        return self.frames[0].frame

    @property
    def last_frame(self) -> int:
        return self.frames[-1].frame

    def mask_at(self, frame: int) -> Optional[JsonRle]:
        """The mask in ``frame``, or None where the instance has none."""
        for item in self.frames:
            if item.frame == frame:
                return item.mask
        return None


@dataclasses.dataclass
class ObjectPrompt:
    """One object a user marks to be followed (video object segmentation): a mask or a point on one frame.

    Exactly one of ``mask`` and ``point`` is set. ``object_id`` is the id the
    object keeps in the outputs (DAVIS palette index, ``1 .. 254``).
    """

    video: str  # the video's name: data set sequence name, or the input file's name without extension
    object_id: int
    frame: int  # 0-based frame of the decoded sequence
    mask: Optional[JsonRle] = None  # of the decoded frame size
    point: Optional[tuple[float, float]] = None  # (x, y) in pixels of the decoded frame
