import numpy as np
import pytest

from tubelets import masks
from tubelets.metrics.davis import evaluate_sequence
from tubelets.metrics.davis_matching import evaluate_tubelets, match_tubelets, mean_region_similarity
from tubelets.records import Tubelet, TubeletFrame

T, H, W = 6, 12, 16


def truth_ids() -> np.ndarray:
    """Two objects: 1 on the left for every frame, 2 on the right from frame 2 on."""
    ids = np.zeros((T, H, W), np.uint8)
    ids[:, 2:8, 1:6] = 1
    ids[2:, 3:9, 9:14] = 2
    return ids


def tubelet(tubelet_id: int, volume: np.ndarray, score: float = 0.5) -> Tubelet:
    frames = [TubeletFrame(t, masks.encode(volume[t].astype(np.uint8)), np.zeros(4, np.float32), score)
              for t in range(len(volume)) if volume[t].any()]
    return Tubelet(tubelet_id, 1, score, frames)


def test_tubelets_with_other_ids_score_perfectly_once_matched():
    ids = truth_ids()
    found = [tubelet(7, ids == 2), tubelet(3, ids == 1)]
    predicted = match_tubelets(ids, [1, 2], found)
    assert np.array_equal(predicted, ids)
    result = evaluate_tubelets(ids, [1, 2], found, sequence="s")
    assert [o.j_stats.mean for o in result.objects] == [1.0, 1.0]


def test_each_object_gets_its_best_tubelet_one_to_one():
    ids = truth_ids()
    partial = (ids == 1) & (np.arange(W) < 4)[None, None, :]  # half of object 1
    found = [tubelet(0, partial, score=0.9), tubelet(1, ids == 1, score=0.1), tubelet(2, ids == 2)]
    predicted = match_tubelets(ids, [1, 2], found)
    assert np.array_equal(predicted == 1, ids == 1)  # the whole one wins, though scored lower


def test_a_tubelet_overlapping_no_object_is_not_matched_and_a_missed_object_scores_low():
    ids = truth_ids()
    elsewhere = np.zeros_like(ids, bool)
    elsewhere[:, 10:12, 0:3] = True
    predicted = match_tubelets(ids, [1, 2], [tubelet(0, elsewhere), tubelet(1, ids == 1)])
    assert not (predicted == 2).any() and np.array_equal(predicted == 1, ids == 1)
    result = evaluate_tubelets(ids, [1, 2], [tubelet(0, elsewhere)])
    assert result.objects[0].j_stats.mean == 0.0
    # object 2 is absent in frame 1 (scored), where the empty prediction is right
    assert result.objects[1].j_stats.mean == pytest.approx(1 / 4)


def test_overlapping_matched_tubelets_share_no_pixel_and_the_higher_score_keeps_it():
    ids = truth_ids()
    grown = ids == 2
    grown[:, 3:9, 5:9] = True  # spills over object 1's last column
    found = [tubelet(0, ids == 1, score=0.2), tubelet(1, grown, score=0.8)]
    predicted = match_tubelets(ids, [1, 2], found)
    assert (predicted[:, 3:8, 5] == 2).all()


def test_no_tubelets_is_an_all_missed_sequence():
    ids = truth_ids()
    assert not match_tubelets(ids, [1, 2], []).any()
    missed = evaluate_sequence(ids, np.zeros_like(ids), [1, 2])
    assert [o.jf_mean for o in evaluate_tubelets(ids, [1, 2], []).objects] == [o.jf_mean for o in missed.objects]


def test_mean_region_similarity_counts_frames_both_leave_empty_as_one():
    a = np.zeros((2, 3, 3), bool)
    b = a.copy()
    a[0, 0, 0] = b[0, 0, 0] = b[0, 0, 1] = True
    assert mean_region_similarity(a, b) == pytest.approx((0.5 + 1.0) / 2)
