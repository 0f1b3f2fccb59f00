import copy
import inspect

import numpy as np
import pytest

from tubelets import masks
from tubelets.config import defaults, load_config
from tubelets.errors import ConfigError
from tubelets.models.calibration import add_other_classes, calibrate_classes, class_means
from tubelets.records import FrameDetections, Tubelet, TubeletFrame, VideoMeta, VideoProposals

HEIGHT, WIDTH = 48, 64


def _detections(frame, candidates):
    """``candidates``: (x, label, score) of 10x10 squares at row 5; x 10 and 11 overlap with IoU 0.82."""
    boxes, rles = [], []
    for x, _, _ in candidates:
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[5:15, x : x + 10] = 1
        boxes.append([x, 5, x + 10, 15])
        rles.append(masks.encode(mask))
    return FrameDetections(
        frame,
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray([c[2] for c in candidates], np.float32),
        np.asarray([c[1] for c in candidates], np.int64),
        rles,
    )


def _video(*frames):
    meta = VideoMeta("clip.mp4", WIDTH, HEIGHT, len(frames))
    return VideoProposals(meta, [_detections(i, candidates) for i, candidates in enumerate(frames)])


def calibrate(video, **changes):
    """Calibration with the paper's settings (``--config paper``: ``th_cc`` 0.5, one class per tubelet) and ``changes``.

    The test video is laid out around the paper's ``th_cc``.
    """
    return calibrate_classes(video, **{**defaults("calibration", preset="paper"), **changes})


def _summary(proposals):
    return [[(int(label), round(float(s), 6)) for label, s in zip(f.labels, f.scores)] for f in proposals.frames]


# Class 1: 0.9, 0.35, 0.8 (mean 0.683, reliable). Class 2: 0.4, 0.45, 0.2 (mean 0.35, re-weighted).
# Class 3: only 0.1, below the score threshold. In frame 1 the class-2 square overlaps the class-1 one
# and outscores it before re-weighting, not after.
VIDEO = _video(
    [(10, 1, 0.9), (40, 2, 0.4), (25, 3, 0.1)],
    [(11, 2, 0.45), (10, 1, 0.35)],
    [(40, 2, 0.2), (10, 1, 0.8)],
)


def test_reliable_classes_keep_scores_and_the_others_are_reweighted():
    before = copy.deepcopy(VIDEO)
    result = calibrate(VIDEO, score_threshold=0.2, th_cc=0.5, beta=0.1, th_iou=0.5)
    assert result.class_means == pytest.approx({1: (0.9 + 0.35 + 0.8) / 3, 2: 0.35})
    assert result.reliable == {1}
    assert _summary(result) == [[(1, 0.9), (2, 0.04)], [(1, 0.35)], [(1, 0.8), (2, 0.02)]]
    assert (result.dropped_low_score, result.dropped_duplicates) == (1, 1)
    assert result.meta == VIDEO.meta
    assert _summary(VIDEO) == _summary(before)  # the input is untouched
    assert result.frames[0].scores.dtype == np.float32
    assert isinstance(result, VideoProposals)


def test_duplicates_are_dropped_across_classes_by_reweighted_score():
    frame = calibrate(VIDEO).frames[1]
    assert len(frame) == 1 and frame.labels[0] == 1
    np.testing.assert_array_equal(frame.boxes, [[10, 5, 20, 15]])
    # Both classes reliable: now the higher raw score (class 2) wins the frame.
    frame = calibrate(VIDEO, th_cc=0.3).frames[1]
    assert _summary(VideoProposals(VIDEO.meta, [frame])) == [[(2, 0.45)]]
    # An overlap at or below th_iou is two objects.
    assert len(calibrate(VIDEO, th_iou=0.9).frames[1]) == 2


def test_disabled_applies_only_the_score_threshold():
    result = calibrate(VIDEO, enabled=False)
    assert _summary(result) == [[(1, 0.9), (2, 0.4)], [(2, 0.45), (1, 0.35)], [(2, 0.2), (1, 0.8)]]
    assert result.reliable == {1, 2} and (result.dropped_low_score, result.dropped_duplicates) == (1, 0)


def test_mean_equal_to_th_cc_is_not_reliable():
    result = calibrate(_video([(10, 1, 0.5)], [(40, 1, 0.5)]), th_cc=0.5)
    assert result.reliable == frozenset()
    assert _summary(result) == [[(1, 0.05)], [(1, 0.05)]]


def test_empty_video_and_one_frame():
    for video in (_video([], []), VideoProposals(VideoMeta("none.mp4", WIDTH, HEIGHT, 0), [])):
        result = calibrate(video)
        assert result.class_means == {} and result.reliable == frozenset()
        assert [len(f) for f in result.frames] == [0] * len(video.frames)
    result = calibrate(_video([(10, 4, 0.7), (11, 4, 0.6), (40, 5, 0.3)]))
    assert result.reliable == {4}
    assert _summary(result) == [[(4, 0.7), (5, 0.03)]]


def test_class_means_pools_the_whole_video():
    assert class_means(VIDEO.frames) == pytest.approx({1: 0.683333, 2: 0.35, 3: 0.1})
    assert class_means([]) == {}


@pytest.mark.parametrize("setting", [{"beta": 1.5}, {"th_iou": -0.1}, {"score_threshold": "high"}, {"th_cc": True}])
def test_bad_settings_are_config_errors(setting):
    name = next(iter(setting))
    with pytest.raises(ConfigError, match=f"calibration.{name} must be a number in"):
        calibrate(VIDEO, **setting)


def test_the_config_section_is_the_function_s_keywords_and_it_keeps_no_defaults():
    section = load_config()["calibration"]
    parameters = inspect.signature(calibrate_classes).parameters
    assert set(section) == set(parameters) - {"proposals"}
    assert all(parameters[name].default is inspect.Parameter.empty for name in section)
    # The defaults hold the values chosen on validation sets, the paper preset the paper's.
    assert (section["th_cc"], section["other_classes"]) == (0.3, 2)
    assert calibrate_classes(VIDEO, **section).reliable == {1, 2}  # class 2's mean lies between 0.3 and 0.5
    assert calibrate_classes(VIDEO, **defaults("calibration", preset="paper")).reliable == {1}


def _square_tubelet(category, x, frames):
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[5:15, x : x + 10] = 1
    box = np.asarray([x, 5, x + 10, 15], np.float32)
    return Tubelet(0, category, 0.5, [TubeletFrame(frame, masks.encode(mask), box, 0.5) for frame in frames])


def test_a_tubelet_also_competes_under_the_other_classes_its_frames_candidates_carry():
    on_class_1 = _square_tubelet(1, 10, [0, 1, 2])
    on_class_2 = _square_tubelet(2, 40, [0, 2])
    # Class 2 is reliable at th_cc 0.3: its square of frame 1 (0.45) overlaps class 1's square with IoU 0.82,
    # and scores nothing in frames 0 and 2, so its mean over the tubelet's three frames is 0.15.
    calibrated = calibrate(VIDEO, th_cc=0.3, other_classes=2)
    scored = add_other_classes([on_class_1, on_class_2], calibrated)
    assert scored[0].other_classes == [(2, pytest.approx(0.15))]
    assert scored[1].other_classes == []  # only its own class overlaps it (the class-1 square is far)
    assert on_class_1.other_classes == [] and scored[0].frames == on_class_1.frames  # a copy; the input is untouched
    # Re-weighted by beta where class 2 is unreliable, so it ranks below the reliable classes' entries.
    reweighted = add_other_classes([on_class_1], calibrate(VIDEO, th_cc=0.5, other_classes=2))
    assert reweighted[0].other_classes == [(2, pytest.approx(0.015))]
    assert add_other_classes([on_class_1], calibrate(VIDEO, th_cc=0.3))[0].other_classes == []  # 0: off


def test_other_classes_are_the_best_scored_up_to_the_setting_and_ties_go_to_the_smaller_id():
    video = _video([(10, 1, 0.9), (10, 3, 0.6), (10, 2, 0.6), (11, 4, 0.7)], [(10, 1, 0.8), (10, 4, 0.4)])
    tubelet = _square_tubelet(1, 10, [0, 1])
    best = add_other_classes([tubelet], calibrate(video, th_cc=0.3, other_classes=2))[0]
    assert best.other_classes == [(4, pytest.approx((0.7 + 0.4) / 2)), (2, pytest.approx(0.3))]
    every = add_other_classes([tubelet], calibrate(video, th_cc=0.3, other_classes=9))[0]
    assert [category for category, _ in every.other_classes] == [4, 2, 3]


@pytest.mark.parametrize("value", [-1, True, 1.5, "2"])
def test_other_classes_must_be_a_count(value):
    with pytest.raises(ConfigError, match="calibration.other_classes must be an integer >= 0"):
        calibrate(VIDEO, other_classes=value)
