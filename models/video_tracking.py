"""One video's proposals to tubelets: class calibration, the tracker, the other classes, the tubelet score.

This is the step between the detector and the tubelets, as one function, so
the pipeline's ``TrackVideo`` (``transforms/tracking.py``) and whatever runs
the stages outside Beam (``benchmarks/tracker_validation.py``,
``benchmarks/pipeline_bench.py``) run the same steps in the same order. No
Beam here: the caller builds the tracker once and hands in the frames.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from tubelets.models.calibration import CalibratedProposals, add_other_classes, calibrate_classes
from tubelets.models.trackers.base import FrameSource, Tracker
from tubelets.models.tubelet_scoring import TubeletScorer, rescore
from tubelets.records import Tubelet, VideoProposals


@dataclasses.dataclass(frozen=True)
class TrackedVideo:
    """What :func:`track_video` made of one video."""

    calibrated: CalibratedProposals  # the proposals the tracker was given, with what calibration decided
    tubelets: list[Tubelet]  # ids 0 .. n-1 by first frame, each with its other classes (Tubelet.other_classes)

    @property
    def proposals(self) -> int:
        """Calibrated proposals over all frames (the pipeline's ``proposals`` counter)."""
        return sum(len(frame) for frame in self.calibrated.frames)


def track_video(
    proposals: VideoProposals,
    frames: Optional[FrameSource],
    tracker: Tracker,
    calibration: Mapping[str, Any],
    scorer: Optional[TubeletScorer] = None,
) -> TrackedVideo:
    """Calibrate ``proposals``' classes, track them, give each tubelet its other classes, score them.

    ``calibration`` is the ``calibration:`` config section (the keywords of
    :func:`~tubelets.models.calibration.calibrate_classes`); ``frames`` the
    decoded RGB frames by frame number, for trackers that look at pixels (a
    lazy source such as :class:`tubelets.io.frames.VideoFrames` is never read
    by those that do not). ``scorer`` (the ``scoring:`` section's learned score) replaces each entry's mean
    detector score; None keeps it. ``proposals`` is not changed.
    """
    calibrated = calibrate_classes(proposals, **calibration)
    tubelets = add_other_classes(tracker.track(calibrated, frames=frames), calibrated)
    if scorer is not None:
        tubelets = rescore(tubelets, proposals.meta.length, scorer)
    return TrackedVideo(calibrated, tubelets)
