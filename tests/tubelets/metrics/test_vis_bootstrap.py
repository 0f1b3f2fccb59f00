"""The paired bootstrap of a VIS metric difference, on videos of one square each."""

import numpy as np
import pytest

from tubelets import masks
from tubelets.metrics.vis import evaluate
from tubelets.metrics.vis_bootstrap import paired_bootstrap, video_contributions

SIZE, LENGTH = (12, 12), 3


def rle_track(top: int) -> list:
    """The same 4x4 square at row ``top`` in every frame."""
    mask = np.zeros(SIZE, np.uint8)
    mask[top:top + 4, 2:6] = 1
    return [masks.encode(mask)] * LENGTH


def ground_truth(videos: int) -> dict:
    return {"videos": [{"id": v, "height": SIZE[0], "width": SIZE[1], "length": LENGTH} for v in range(videos)],
            "categories": [{"id": 1, "name": "square"}],
            # ids from 1: the official evaluator reads a match with annotation id 0 as no match
            "annotations": [{"id": v + 1, "video_id": v, "category_id": 1, "iscrowd": 0, "segmentations": rle_track(0)}
                            for v in range(videos)]}


def predictions(hits: list[bool]) -> list[dict]:
    """One prediction per video: on the square where ``hits[v]``, beside it otherwise."""
    return [{"video_id": v, "category_id": 1, "score": 0.9, "segmentations": rle_track(0 if hit else 8)}
            for v, hit in enumerate(hits)]


def test_observed_difference_is_the_full_set_difference_and_a_clear_lead_is_significant():
    gt = ground_truth(8)
    better, worse = predictions([True] * 8), predictions([True, False] * 4)
    difference = paired_bootstrap(gt, better, worse, samples=200, seed=1)
    expected = evaluate(gt, better).stats["AP"] - evaluate(gt, worse).stats["AP"]
    assert difference.observed == pytest.approx(expected) and expected > 0.4
    assert 0 < difference.low <= difference.observed <= difference.high
    assert difference.a_wins > 0.95 and difference.samples == 200  # ties only when all drawn videos are hits of both


def test_a_lead_from_one_video_is_not_significant():
    gt = ground_truth(10)
    one_more = predictions([True] + [False] * 9)
    difference = paired_bootstrap(gt, one_more, predictions([False] * 10), metric="AP50", samples=300, seed=2)
    assert difference.observed > 0
    assert difference.low == 0.0  # a third of the resamples leave the deciding video out
    assert 0.5 < difference.a_wins < 0.8


def test_identical_results_differ_by_nothing_and_bad_sample_counts_fail():
    gt = ground_truth(4)
    same = predictions([True, False, True, True])
    difference = paired_bootstrap(gt, same, same, samples=50)
    assert (difference.observed, difference.low, difference.high, difference.a_wins) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="samples"):
        paired_bootstrap(gt, same, same, samples=0)


def test_video_contributions_name_the_one_video_that_makes_a_difference():
    gt = ground_truth(6)
    one_more = predictions([True, True, False, True, True, True])
    fewer = predictions([True, True, False, True, True, False])
    observed, contributions = video_contributions(gt, one_more, fewer, metric="AP50")
    expected = evaluate(gt, one_more).stats["AP50"] - evaluate(gt, fewer).stats["AP50"]
    assert observed == pytest.approx(expected) and expected > 0
    assert contributions[0].video_id == 5  # the one video the two differ on, first
    assert contributions[0].without == 0.0 and contributions[0].contribution == pytest.approx(observed)
    assert sorted(c.video_id for c in contributions) == list(range(6))
    # Without a video both hit, the pooled AP50 still holds the miss, so the other videos move it less.
    assert all(abs(c.contribution) < contributions[0].contribution for c in contributions[1:])


def test_one_video_contributes_the_whole_difference():
    gt = ground_truth(1)
    observed, contributions = video_contributions(gt, predictions([True]), predictions([False]))
    assert observed > 0 and [(c.video_id, c.without, c.contribution) for c in contributions] == [(0, 0.0, observed)]
