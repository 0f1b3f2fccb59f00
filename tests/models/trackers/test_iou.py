import dataclasses

import pytest

from tubelets import masks
from tubelets.config import defaults, load_config
from tubelets.errors import ConfigError
from tubelets.models.trackers import build_tracker
from tubelets.models.trackers.iou import IouTracker
from tubelets.records import FrameDetections, VideoProposals


def iou_tracker(**changes) -> IouTracker:
    """The iou tracker with the shipped settings (``configs/default.yaml``) and ``changes``."""
    return IouTracker(**{**defaults("tracker.iou"), **changes})


def _boxes(tubelet):
    """(frame, x1, y1) of each frame of a tubelet."""
    return [(item.frame, int(item.box[0]), int(item.box[1])) for item in tubelet.frames]


def _gap_video(make_video, length=12):
    """A moves right 3 px/frame, unseen in frames 4-6; B moves down 2 px/frame, unseen in frames 4-7.

    After its gap neither square overlaps its last mask, so only the motion prediction can link it.
    """
    frames = []
    for t in range(length):
        objects = []
        if t not in (4, 5, 6):
            objects.append((2 + 3 * t, 5, 1, 0.9))
        if t not in (4, 5, 6, 7):
            objects.append((45, 2 + 2 * t, 2, 0.8))
        frames.append(objects)
    return make_video(frames)


def test_a_gap_up_to_max_age_is_bridged_and_a_longer_one_ends_the_track(make_video):
    tubelets = iou_tracker(max_age=3).track(_gap_video(make_video))
    assert [(t.tubelet_id, t.category_id, t.first_frame, t.last_frame, len(t.frames)) for t in tubelets] == [
        (0, 1, 0, 11, 9),
        (1, 2, 0, 3, 4),
        (2, 2, 8, 11, 4),
    ]
    assert _boxes(tubelets[0]) == [(t, 2 + 3 * t, 5) for t in (0, 1, 2, 3, 7, 8, 9, 10, 11)]
    assert [t.score for t in tubelets] == pytest.approx([0.9, 0.8, 0.8])
    assert [len(t.frames) for t in iou_tracker(max_age=4).track(_gap_video(make_video))] == [9, 8]


def test_ages_count_only_the_frames_the_detector_ran_on(make_video):
    # A square moving right 1 px a frame, detected on every 4th frame (proposals.detect_every 4).
    video = make_video([[(2 + t, 5, 1, 0.9)] if t % 4 == 0 else [] for t in range(13)])
    skipped = [d if d.frame % 4 == 0 else FrameDetections.empty(d.frame, detected=False) for d in video.frames]
    (linked,) = iou_tracker(max_age=1).track(VideoProposals(video.meta, skipped))
    # The skipped frames between two matches get the earlier mask moved along the way.
    assert _boxes(linked) == [(t, 2 + t, 5) for t in range(13)]
    assert [masks.bbox(item.mask) for item in linked.frames] == [[2 + t, 5, 10, 10] for t in range(13)]
    assert linked.score == pytest.approx(0.9)
    # Three empty frames the detector did look at are three misses: more than max_age ends the track.
    assert [len(t.frames) for t in iou_tracker(max_age=1).track(video)] == [1, 1, 1, 1]


def test_frames_the_detector_looked_at_stay_gaps_and_none_is_filled_after_the_last_match(make_video):
    # Detected on frames 0, 3 and 6; frame 3 was looked at and held nothing; frames 7-8 come after the last match.
    video = make_video([[(2 + t // 2, 5, 1, 0.9)] if t in (0, 6) else [] for t in range(9)])
    skipped = [d if d.frame in (0, 3, 6) else FrameDetections.empty(d.frame, detected=False) for d in video.frames]
    (linked,) = iou_tracker(max_age=1).track(VideoProposals(video.meta, skipped))
    assert [item.frame for item in linked.frames] == [0, 1, 2, 4, 5, 6]


def test_crossing_objects_keep_their_identity(make_video):
    # Same row, opposite directions: in frames 6-7 the squares overlap each other more than their own
    # last masks, and only the constant-velocity prediction tells them apart.
    video = make_video([[(2 + 4 * t, 20, 1, 0.9), (52 - 4 * t, 20, 1, 0.8)] for t in range(13)])
    tubelets = iou_tracker().track(video)
    assert [_boxes(t) for t in tubelets] == [
        [(t, 2 + 4 * t, 20) for t in range(13)],
        [(t, 52 - 4 * t, 20) for t in range(13)],
    ]
    # Without the motion term the identities swap at the crossing.
    swapped = iou_tracker(mask_weight=1.0, min_similarity=0.1).track(video)
    assert _boxes(swapped[0])[7] == (7, 24, 20)


def test_an_object_appearing_mid_video_starts_a_track(make_video):
    video = make_video([[(2 + 2 * t, 5, 1, 0.9)] + ([(40, 30, 3, 0.6)] if t >= 5 else []) for t in range(10)])
    tubelets = iou_tracker().track(video)
    assert [(t.category_id, t.first_frame, t.last_frame) for t in tubelets] == [(1, 0, 9), (3, 5, 9)]


def test_noisy_labels_still_link_and_the_track_takes_the_majority(make_video):
    labels = [1, 2, 1, 1, 2, 1, 1, 3]
    video = make_video([[(5 + t, 10, label, 0.5 + 0.05 * t)] for t, label in enumerate(labels)])
    (tubelet,) = iou_tracker().track(video)
    assert tubelet.category_id == 1 and len(tubelet.frames) == 8
    assert tubelet.score == pytest.approx(0.5 + 0.05 * 3.5)


def test_class_mismatch_loses_to_an_equal_match_of_the_same_class(make_video):
    video = make_video([[(10, 10, 1, 0.9)], [(12, 10, 2, 0.95), (12, 10, 1, 0.6)]])
    tubelets = iou_tracker().track(video)
    assert [[item.score for item in t.frames] for t in tubelets] == [pytest.approx([0.9, 0.6]), pytest.approx([0.95])]
    assert [t.category_id for t in tubelets] == [1, 2]


def test_below_min_similarity_never_links(make_video):
    video = make_video([[(10, 10, 1, 0.9)], [(30, 30, 1, 0.9)]])
    assert len(iou_tracker().track(video)) == 2


def test_no_proposals_one_frame_and_min_length(make_video):
    assert iou_tracker().track(make_video([[], [], []])) == []
    assert iou_tracker().track(make_video([])) == []
    single = iou_tracker().track(make_video([[(5, 5, 1, 0.9), (30, 20, 2, 0.7)]]))
    assert [(t.tubelet_id, t.category_id, len(t.frames)) for t in single] == [(0, 1, 1), (1, 2, 1)]
    video = make_video([[(5, 5, 1, 0.9), (40, 20, 2, 0.7)], [(6, 5, 1, 0.9)]])
    assert [t.category_id for t in iou_tracker(min_length=2).track(video)] == [1]


def test_empty_masks_link_by_box_but_never_reach_a_tubelet(make_video):
    # label < 0: the detection has a box but an empty mask (scored, counted as class |label|).
    video = make_video([[(5, 5, 1, 0.9), (30, 20, -2, 0.7)], [(6, 5, -1, 0.2), (31, 20, -2, 0.7)], [(7, 5, 1, 0.8)]])
    (tubelet,) = iou_tracker().track(video)
    assert [item.frame for item in tubelet.frames] == [0, 2] and tubelet.score == pytest.approx(0.85)


def test_ids_follow_the_first_frame_with_a_mask(make_video):
    # The first track starts with an empty mask, so the second one's mask comes first.
    video = make_video([[(5, 5, -1, 0.9), (40, 20, 2, 0.7)], [(6, 5, 1, 0.9)], [(7, 5, 1, 0.9)]])
    tubelets = iou_tracker().track(video)
    assert [(t.tubelet_id, t.category_id, t.first_frame) for t in tubelets] == [(0, 2, 0), (1, 1, 1)]
    assert [t.category_id for t in iou_tracker(min_length=2).track(video)] == [1]  # 2 masks of 3 frames


def test_frames_out_of_order_are_rejected(make_video):
    video = make_video([[], []])
    video.frames.reverse()
    with pytest.raises(ValueError, match="increasing frame order"):
        iou_tracker().track(video)


@pytest.mark.parametrize(
    "settings",
    [{"max_age": -1}, {"min_length": 0}, {"max_age": 1.5}, {"min_similarity": 0}, {"mask_weight": 2},
     {"class_mismatch_scale": "x"}],
)
def test_bad_settings_are_config_errors(settings):
    with pytest.raises(ConfigError, match=f"tracker.iou.{next(iter(settings))} must be"):
        iou_tracker(**settings)


def test_the_config_section_builds_the_tracker_which_keeps_no_defaults_of_its_own():
    section = load_config()["tracker"]
    assert {field.name for field in dataclasses.fields(IouTracker)} == set(section["iou"])
    assert all(field.default is dataclasses.MISSING for field in dataclasses.fields(IouTracker))
    assert build_tracker("iou", section) == iou_tracker()
    assert build_tracker("iou", {"iou": {**section["iou"], "max_age": 2}}).max_age == 2
    with pytest.raises(TypeError, match="missing 5 required keyword-only arguments"):
        IouTracker()
