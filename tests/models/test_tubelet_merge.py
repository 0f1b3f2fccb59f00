"""Tubelet merging: same-object tubelets merge (class by majority, the score rule), distinct ones stay apart."""

import numpy as np
import pytest

from tubelets import masks
from tubelets.models.tubelet_merge import TubeletCandidate, merge_tubelets, temporal_iou
from tubelets.records import TubeletFrame

H, W = 20, 30


def square(x: int, y: int, size: int = 6) -> dict:
    mask = np.zeros((H, W), np.uint8)
    mask[y : y + size, x : x + size] = 1
    return masks.encode(mask)


def candidate(frames: dict[int, tuple[int, int, float]], labels: list[int]) -> TubeletCandidate:
    """``frames``: ``{frame: (x, y, score)}``; one vote per label with score 1."""
    items = {f: TubeletFrame(f, square(x, y), np.array([x, y, x + 6, y + 6], np.float32), s)
             for f, (x, y, s) in frames.items()}
    return TubeletCandidate(items, list(labels), [1.0] * len(labels))


def test_two_tubelets_over_one_object_merge_with_majority_class_and_mean_score():
    strong = candidate({0: (2, 2, 0.9), 1: (3, 2, 0.9), 2: (4, 2, 0.9)}, labels=[1, 1])
    weak = candidate({1: (3, 2, 0.3), 2: (4, 3, 0.3), 3: (5, 3, 0.3), 4: (6, 3, 0.3)}, labels=[2, 2, 2])
    merged = merge_tubelets([weak, strong], th_seq=0.5)
    assert len(merged) == 1
    tubelet = merged[0]
    assert tubelet.category_id == 2  # three votes against two
    assert [f.frame for f in tubelet.frames] == [0, 1, 2, 3, 4]
    assert [f.score for f in tubelet.frames] == [0.9, 0.9, 0.9, 0.3, 0.3]  # the higher-scored one's frames win
    assert tubelet.score == pytest.approx(np.mean([0.9, 0.9, 0.9, 0.3, 0.3]))
    assert masks.iou_matrix([tubelet.mask_at(2)], [strong.frames[2].mask])[0, 0] == 1.0


def test_distinct_objects_and_disjoint_times_stay_apart():
    left = candidate({0: (0, 0, 0.8), 1: (1, 0, 0.8)}, [1])
    right = candidate({0: (20, 10, 0.7), 1: (21, 10, 0.7)}, [1])
    later = candidate({5: (0, 0, 0.6)}, [1])  # no shared frame with `left`: never merged
    merged = merge_tubelets([left, right, later], th_seq=0.5)
    assert len(merged) == 3
    assert [t.tubelet_id for t in merged] == [0, 1, 2] and merged[-1].first_frame == 5


def test_temporal_iou_averages_over_shared_frames_only():
    a = candidate({0: (0, 0, 1.0), 1: (0, 0, 1.0), 2: (0, 0, 1.0)}, [1])
    b = candidate({1: (0, 0, 1.0), 2: (3, 0, 1.0), 7: (9, 9, 1.0)}, [1])
    assert temporal_iou(a, b) == pytest.approx((1.0 + 18 / 54) / 2)
    assert temporal_iou(a, candidate({9: (0, 0, 1.0)}, [1])) == 0.0


def test_empty_input_and_bad_threshold():
    assert merge_tubelets([], th_seq=0.5) == []
    with pytest.raises(ValueError, match="th_seq"):
        merge_tubelets([], th_seq=1.5)


def test_empty_masks_are_not_frames():
    empty = np.zeros((H, W), np.uint8)
    item = TubeletFrame(0, masks.encode(empty), np.zeros(4, np.float32), 0.9)
    assert merge_tubelets([TubeletCandidate({0: item}, [1], [0.9])], th_seq=0.5) == []
