import numpy as np
import pytest
from apache_beam import Create
from apache_beam.testing.util import assert_that

from tubelets import masks
from tubelets.errors import ConfigError
from tubelets.records import FrameDetections, VideoMeta, VideoProposals
from tubelets.transforms.tracking import GroupProposals, TrackVideo, assemble_video


def meta(key: str, length: int) -> VideoMeta:
    # The url is never read: the iou tracker does not look at pixels.
    return VideoMeta(key=key, width=64, height=48, length=length, url=f"/nowhere/{key}.mp4")


def test_a_video_without_meta_failed_to_decode_and_gives_nothing(square_detections):
    joined = ("a", {"meta": [], "frames": [square_detections(0, [(1, 1, 1, 0.9)])]})
    assert list(assemble_video(joined)) == []


def test_frames_without_detections_are_filled_with_empty_ones_in_order(square_detections):
    found = [square_detections(3, [(5, 5, 2, 0.8)]), square_detections(1, [(1, 1, 1, 0.9), (30, 20, 4, 0.7)])]
    (video,) = assemble_video(("a", {"meta": [meta("a", 5)], "frames": found}))
    assert video.meta == meta("a", 5)
    assert [d.frame for d in video.frames] == [0, 1, 2, 3, 4]
    assert [len(d) for d in video.frames] == [0, 2, 0, 1, 0]
    assert video.frames[1] is found[1] and video.frames[3] is found[0]
    assert video.frames[0].boxes.shape == (0, 4)


def test_frames_the_detector_skipped_are_marked_not_detected(square_detections):
    found = [square_detections(0, [(1, 1, 1, 0.9)]), square_detections(3, [])]
    (video,) = assemble_video(("a", {"meta": [meta("a", 5)], "frames": found}), detect_every=3)
    assert [len(d) for d in video.frames] == [1, 0, 0, 0, 0]
    # Frame 3 was looked at and held nothing; 1, 2 and 4 were not looked at.
    assert [d.detected for d in video.frames] == [True, False, False, True, False]


def test_group_proposals_joins_meta_and_frames_and_drops_orphans(pipeline, square_detections):
    metas = [("a", meta("a", 3)), ("b", meta("b", 2))]
    found = [("a", square_detections(2, [(1, 1, 1, 0.9)])), ("a", square_detections(0, [(2, 2, 1, 0.9)])),
             ("b", square_detections(1, [(3, 3, 2, 0.9)])), ("c", square_detections(0, [(4, 4, 3, 0.9)]))]

    def check(videos):
        shapes = sorted((v.meta.key, [len(d) for d in v.frames], [d.frame for d in v.frames]) for v in videos)
        assert shapes == [("a", [1, 0, 1], [0, 1, 2]), ("b", [0, 1], [0, 1])]

    with pipeline as p:
        joined = (p | "Metas" >> Create(metas), p | "Detections" >> Create(found)) | GroupProposals(detect_every=1)
        assert_that(joined, check)


@pytest.fixture
def two_objects(square_detections) -> VideoProposals:
    """Two squares moving right 2 px a frame (labels 1 and 3) and a low-scored one-frame false alarm."""
    frames = []
    for t in range(5):
        squares = [(4 + 2 * t, 4, 1, 0.9), (4 + 2 * t, 30, 3, 0.8)]
        if t == 2:
            squares.append((50, 20, 2, 0.1))  # below calibration.score_threshold (0.2)
        frames.append(square_detections(t, squares))
    return VideoProposals(meta("clip", 5), frames)


def test_track_video_calibrates_then_tracks_with_the_configured_tracker(config, two_objects):
    tracker = TrackVideo(config)
    tracker.setup()
    ((out_meta, tubelets),) = list(tracker.process(two_objects))
    assert out_meta is two_objects.meta
    assert [(t.tubelet_id, t.category_id, len(t.frames)) for t in tubelets] == [(0, 1, 5), (1, 3, 5)]
    assert [t.score for t in tubelets] == pytest.approx([0.9, 0.8])
    for tubelet, row in zip(tubelets, (4, 30)):
        assert [f.frame for f in tubelet.frames] == [0, 1, 2, 3, 4]
        assert [masks.bbox(f.mask) for f in tubelet.frames] == [[4 + 2 * t, row, 10, 10] for t in range(5)]


def test_track_video_of_a_video_without_detections_gives_no_tubelets(config):
    tracker = TrackVideo(config)
    tracker.setup()
    empty = VideoProposals(meta("quiet", 3), [FrameDetections.empty(t) for t in range(3)])
    assert list(tracker.process(empty)) == [(empty.meta, [])]


def test_an_unknown_tracker_fails_at_setup_with_the_known_names(config):
    config["tracker"]["name"] = "nope"
    with pytest.raises(ConfigError, match="iou"):
        TrackVideo(config).setup()


def test_track_video_applies_the_tracker_settings(config, two_objects):
    config["tracker"]["iou"]["min_length"] = 6  # longer than the video: every track is dropped
    tracker = TrackVideo(config)
    tracker.setup()
    assert list(tracker.process(two_objects)) == [(two_objects.meta, [])]
    assert np.isclose(two_objects.frames[2].scores[-1], 0.1)  # the input was not changed


def test_track_video_gives_a_tubelet_the_other_classes_calibration_deduplicated(config, square_detections):
    # The upper square is also proposed as class 2 in every frame, under its class-1 proposal.
    frames = [square_detections(t, [(4 + 2 * t, 4, 1, 0.9), (4 + 2 * t, 4, 2, 0.5), (4 + 2 * t, 30, 3, 0.8)])
              for t in range(5)]
    tracker = TrackVideo(config)
    tracker.setup()
    ((_, tubelets),) = list(tracker.process(VideoProposals(meta("clip", 5), frames)))
    assert [(t.category_id, t.other_classes) for t in tubelets] == [(1, [(2, pytest.approx(0.5))]), (3, [])]
    config["calibration"]["other_classes"] = 0
    tracker = TrackVideo(config)
    tracker.setup()
    ((_, tubelets),) = list(tracker.process(VideoProposals(meta("clip", 5), frames)))
    assert [t.other_classes for t in tubelets] == [[], []]


def test_the_tracker_is_built_once_per_process_and_run(config, two_objects):
    # Beam's Dask runner sets the DoFn up for every video: the tracker (and its checkpoint) must not load each time.
    first, again = TrackVideo(config), TrackVideo(config)
    first.setup()
    again.setup()
    assert again._tracker is first._tracker and again._scorer is first._scorer
    ((_, tubelets),) = list(again.process(two_objects))
    assert [(t.tubelet_id, t.category_id, len(t.frames)) for t in tubelets] == [(0, 1, 5), (1, 3, 5)]
    other_settings = TrackVideo({**config, "tracker": {**config["tracker"], "iou": {**config["tracker"]["iou"],
                                                                                  "max_age": 3}}})
    other_run = TrackVideo({**config, "run": {**config["run"], "run_id": "another"}})
    for other in (other_settings, other_run):
        other.setup()
        assert other._tracker is not first._tracker
