"""The oracle re-scorings and the frame decomposition of a VIS result, on hand-made tracks."""

import numpy as np
import pytest

from tubelets import masks
from tubelets.metrics.vis_diagnosis import diagnose

SIZE = (16, 16)


def square(y, x, side=4):
    """A ``side x side`` square mask at row ``y``, column ``x`` (``side**2`` pixels)."""
    mask = np.zeros(SIZE, dtype=np.uint8)
    mask[y:y + side, x:x + side] = 1
    return mask


def track(frames):
    return [masks.encode(m) if m is not None else None for m in frames]


def data_set(tracks_by_video: dict, categories=(1, 2), length=4) -> dict:
    """``tracks_by_video``: {video id: [(category, frames), ...]}, every video ``length`` frames long."""
    annotations = [{"id": len(tracks_by_video) * 100 + v * 10 + i, "video_id": v, "category_id": c, "iscrowd": 0,
                    "segmentations": track(frames)}
                   for v, tracks in tracks_by_video.items() for i, (c, frames) in enumerate(tracks)]
    return {"videos": [{"id": v, "height": SIZE[0], "width": SIZE[1], "length": length} for v in tracks_by_video],
            "categories": [{"id": c, "name": f"c{c}"} for c in categories], "annotations": annotations}


def result(video, category, score, frames):
    return {"video_id": video, "category_id": category, "score": score, "segmentations": track(frames)}


A = [square(0, 0)] * 4
B = [square(8, 8)] * 4


def test_perfect_results_lose_nothing():
    gt = data_set({1: [(1, A), (2, B)]})
    diagnosis = diagnose(gt, [result(1, 1, 0.9, A), result(1, 2, 0.8, B)])
    for name in ("real", "oracle scores", "oracle classes", "oracle both"):
        assert diagnosis.ap[name]["AP"] == pytest.approx(1.0), name
    frames = diagnosis.frames
    assert (frames.iou, frames.missed, frames.extra, frames.overlap, frames.tracks_found) == (1.0, 0.0, 0.0, 0.0, 1.0)


def test_a_wrong_class_costs_real_ap_and_only_the_class_oracle_repairs_it():
    gt = data_set({1: [(1, A)]})
    diagnosis = diagnose(gt, [result(1, 2, 0.9, A)])
    assert diagnosis.ap["real"]["AP"] == 0.0
    assert diagnosis.ap["oracle scores"]["AP"] == 0.0
    assert diagnosis.ap["oracle classes"]["AP"] == pytest.approx(1.0)
    assert diagnosis.frames.iou == 1.0  # the decomposition ignores categories


def test_a_junk_tubelet_ranked_first_costs_precision_that_oracle_scores_restore():
    gt = data_set({1: [(1, A)]})
    junk = [square(8, 8)] * 4  # no overlap with the track
    diagnosis = diagnose(gt, [result(1, 1, 0.9, junk), result(1, 1, 0.5, A)])
    assert diagnosis.ap["real"]["AP"] == pytest.approx(0.5)
    assert diagnosis.ap["oracle scores"]["AP"] == pytest.approx(1.0)
    assert diagnosis.frames.iou == 1.0  # the track's best tubelet is the right one


def test_missed_extra_and_overlap_shares_of_the_union():
    truth = [square(0, 0), square(0, 0), square(0, 0), None]  # 16 px in frames 0-2
    tubelet = [square(0, 0), None, square(0, 2), square(0, 0)]  # exact, missing, half overlap (8 px), extra
    diagnosis = diagnose(data_set({1: [(1, truth)]}), [result(1, 1, 0.9, tubelet)])
    # union: frame 0 16, frame 1 16 (missed), frame 2 16 + 16 - 8 = 24 (16 lost), frame 3 16 (extra) = 72.
    frames = diagnosis.frames
    assert frames.iou == pytest.approx(24 / 72)
    assert frames.missed == pytest.approx(16 / 72)
    assert frames.overlap == pytest.approx(16 / 72)
    assert frames.extra == pytest.approx(16 / 72)
    assert frames.iou + frames.missed + frames.overlap + frames.extra == pytest.approx(1.0)
    assert frames.tracks_found == 0.0  # video IoU 1/3 < 0.5


def test_a_video_without_results_counts_as_missed():
    gt = data_set({1: [(1, A)], 2: [(1, B)]})
    diagnosis = diagnose(gt, [result(1, 1, 0.9, A)])
    assert diagnosis.frames.missed == pytest.approx(0.5)
    assert diagnosis.frames.tracks_found == 0.5


def test_a_track_followed_by_two_tubelets_in_turn_is_split():
    truth = [square(0, 0)] * 6
    first_half, second_half = [square(0, 0)] * 3 + [None] * 3, [None] * 3 + [square(0, 0)] * 3
    diagnosis = diagnose(data_set({1: [(1, truth)]}, length=6),
                         [result(1, 1, 0.9, first_half), result(1, 1, 0.8, second_half)])
    assert diagnosis.frames.tracks_split == 1.0


@pytest.mark.parametrize("second", [
    [None] * 4 + [square(0, 0)] * 2,  # the two frames the main tubelet lacks: a stray, not a split
    [square(0, 0)] * 3 + [None] * 3,  # frames the main tubelet has: a duplicate, not a split
    [square(8, 8)] * 6,  # another object
])
def test_strays_duplicates_and_other_objects_do_not_split_a_track(second):
    truth = [square(0, 0)] * 6
    main = [square(0, 0)] * 4 + [None] * 2
    diagnosis = diagnose(data_set({1: [(1, truth)]}, length=6), [result(1, 1, 0.9, main), result(1, 1, 0.8, second)])
    assert diagnosis.frames.tracks_split == 0.0


def test_a_tubelets_other_classes_count_in_real_ap_and_once_in_the_oracles():
    gt = data_set({1: [(1, A)]})
    # The tubelet's majority class is wrong; its other class, a lower-scored entry with the same masks, is right.
    entries = [result(1, 2, 0.9, A), result(1, 1, 0.3, A)]
    diagnosis = diagnose(gt, entries)
    assert diagnosis.ap["real"]["AP"] == pytest.approx(1.0)
    assert diagnosis.ap["oracle scores"]["AP"] == 0.0  # the tubelet, as its highest-scored entry (class 2)
    assert diagnosis.ap["oracle classes"]["AP"] == pytest.approx(1.0)  # once: no duplicate of class 1
    assert (diagnosis.frames.tracks_found, diagnosis.frames.tracks_split) == (1.0, 0.0)
    assert diagnosis.frames.tracks_found_in_class == 1.0  # by the class-1 entry
    alone = diagnose(gt, entries[:1])
    assert (alone.frames.tracks_found, alone.frames.tracks_found_in_class) == (1.0, 0.0)  # lost to the class
