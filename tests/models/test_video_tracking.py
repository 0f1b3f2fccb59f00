import numpy as np
import pytest

from tubelets import masks
from tubelets.config import load_config
from tubelets.models.calibration import CalibratedProposals
from tubelets.models.trackers import build_tracker
from tubelets.models.trackers.base import Tracker
from tubelets.models.video_tracking import track_video
from tubelets.records import FrameDetections, VideoMeta, VideoProposals

HEIGHT, WIDTH, SIDE = 48, 64, 10


def squares(frame: int, found: list[tuple[int, int, int, float]]) -> FrameDetections:
    """One frame's detections of 10-pixel squares given as ``(x, y, label, score)``."""
    frames = []
    for x, y, _, _ in found:
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[y : y + SIDE, x : x + SIDE] = 1
        frames.append(masks.encode(mask))
    return FrameDetections(
        frame=frame,
        boxes=np.array([[x, y, x + SIDE, y + SIDE] for x, y, _, _ in found], np.float32).reshape(-1, 4),
        scores=np.array([score for *_, score in found], np.float32),
        labels=np.array([label for _, _, label, _ in found], np.int64),
        masks=frames,
    )


def video(frames: list[FrameDetections]) -> VideoProposals:
    return VideoProposals(VideoMeta("clip", WIDTH, HEIGHT, len(frames)), frames)


@pytest.fixture
def config() -> dict:
    """The shipped settings (configs/default.yaml) with the ``iou`` tracker: tubelets follow from the proposals."""
    return load_config(None, ["tracker.name=iou"])


@pytest.fixture
def two_squares() -> VideoProposals:
    """Squares moving right 2 px a frame (labels 1 and 3), the upper one also proposed as class 2 under its
    class-1 proposal, and a one-frame false alarm below calibration's score threshold."""
    frames = []
    for t in range(5):
        found = [(4 + 2 * t, 4, 1, 0.9), (4 + 2 * t, 4, 2, 0.5), (4 + 2 * t, 30, 3, 0.8)]
        if t == 2:
            found.append((50, 20, 2, 0.1))
        frames.append(squares(t, found))
    return video(frames)


def test_calibrates_then_tracks_then_adds_the_other_classes(config, two_squares):
    tracker = build_tracker(None, config["tracker"])
    tracked = track_video(two_squares, None, tracker, config["calibration"])
    # Calibration dropped the false alarm and the class-2 duplicate of the upper square in every frame.
    assert isinstance(tracked.calibrated, CalibratedProposals)
    assert tracked.proposals == 10
    assert tracked.calibrated.dropped_low_score == 1 and tracked.calibrated.dropped_duplicates == 5
    assert [(t.tubelet_id, t.category_id, len(t.frames)) for t in tracked.tubelets] == [(0, 1, 5), (1, 3, 5)]
    assert [t.other_classes for t in tracked.tubelets] == [[(2, pytest.approx(0.5))], []]
    assert [masks.bbox(f.mask) for f in tracked.tubelets[0].frames] == [[4 + 2 * t, 4, 10, 10] for t in range(5)]


def test_the_calibration_settings_are_the_ones_given(config, two_squares):
    tracker = build_tracker(None, config["tracker"])
    tracked = track_video(two_squares, None, tracker, {**config["calibration"], "other_classes": 0})
    assert [t.other_classes for t in tracked.tubelets] == [[], []]
    tracked = track_video(two_squares, None, tracker, {**config["calibration"], "score_threshold": 0.95})
    assert tracked.proposals == 0 and tracked.tubelets == []


def test_the_input_is_not_changed(config, two_squares):
    track_video(two_squares, None, build_tracker(None, config["tracker"]), config["calibration"])
    assert [len(frame) for frame in two_squares.frames] == [3, 3, 4, 3, 3]
    assert np.isclose(two_squares.frames[2].scores[-1], 0.1)


class Recording(Tracker):
    """Tracks nothing; keeps what it was given."""

    def track(self, proposals, frames=None):
        self.given = (proposals, frames)
        return []


def test_the_tracker_gets_the_calibrated_proposals_and_the_frames(config, two_squares):
    tracker, frames = Recording(), [np.zeros((HEIGHT, WIDTH, 3), np.uint8)] * 5
    tracked = track_video(two_squares, frames, tracker, config["calibration"])
    assert tracker.given[0] is tracked.calibrated and tracker.given[1] is frames
    assert tracked.tubelets == []


def test_a_video_without_proposals_gives_no_tubelets(config):
    empty = video([FrameDetections.empty(t) for t in range(3)])
    tracked = track_video(empty, None, build_tracker(None, config["tracker"]), config["calibration"])
    assert tracked.proposals == 0 and tracked.tubelets == []
