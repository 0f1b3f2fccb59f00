"""The paired bootstrap of a VIS metric difference, on videos of one square each."""

import dataclasses

import numpy as np
import pytest

from tubelets import masks
from tubelets.metrics.vis import accumulate, evaluate, match_videos
from tubelets.metrics.vis_bootstrap import (PairedRuns, PooledMatches, bootstrap, paired_bootstrap, score_rows,
                                            video_ap, video_contributions)
from tubelets.synth.predictions import noisy_predictions, random_gt

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


def test_a_pooled_resample_scores_as_the_drawn_videos_one_by_one():
    # A resample is one pooled record; accumulate gives it the numbers of the drawn videos as separate records.
    gt = random_gt(seed=2, videos=12, sizes=((24, 32), (48, 64)))
    matches, category_ids = match_videos(gt, noisy_predictions(gt, seed=3))
    picks = np.random.default_rng(0).integers(0, len(matches), len(matches))
    assert len(set(picks.tolist())) < len(picks)  # some video drawn twice
    one_by_one = [dataclasses.replace(matches[i], video_id=position) for position, i in enumerate(picks)]
    pooled = accumulate([PooledMatches(matches).drawn(picks)], category_ids)
    separate = accumulate(one_by_one, category_ids)
    np.testing.assert_array_equal(pooled.precision, separate.precision)
    np.testing.assert_array_equal(pooled.recall, separate.recall)
    assert (pooled.num_gt, pooled.num_predictions) == (separate.num_gt, separate.num_predictions)
    categories = sorted(separate.per_category)
    np.testing.assert_array_equal(score_rows(pooled, categories), score_rows(separate, categories))
    with pytest.raises(ValueError, match="same videos"):
        PairedRuns(matches, matches[1:], category_ids)


def test_every_number_on_the_whole_set_and_one_draw_of_the_videos_for_all():
    gt = random_gt(seed=4, videos=10, sizes=((24, 32), (48, 64)))
    results_a, results_b = noisy_predictions(gt, seed=1), noisy_predictions(gt, seed=2, miss_rate=0.5)
    (matches_a, category_ids), (matches_b, _) = match_videos(gt, results_a), match_videos(gt, results_b)
    with_gt = sorted(accumulate(matches_a, category_ids).per_category)
    result = bootstrap(PairedRuns(matches_a, matches_b, category_ids, with_gt), samples=40, seed=3)
    assert result.a.shape == result.low.shape == (1 + len(with_gt), 12) and result.categories == tuple(with_gt)
    whole_a = score_rows(evaluate(gt, results_a), with_gt)
    np.testing.assert_array_equal(result.a, np.where(whole_a < 0, np.nan, whole_a))
    # The one-number form draws the same videos: its interval is the same entry.
    single = paired_bootstrap(gt, results_a, results_b, metric="AR10", samples=40, seed=3)
    assert (single.low, single.high, single.a_wins) == (result.low[0, 7], result.high[0, 7], result.a_wins[0, 7])
    # Undefined numbers (no medium or large objects in small frames) are NaN, not a difference of 0.
    assert np.isnan(result.difference[0, 4]) and np.isnan(result.high[0, 4])


def test_a_videos_ap_is_its_own_accumulation():
    gt = random_gt(seed=6, videos=6, sizes=((24, 32),))
    matches, category_ids = match_videos(gt, noisy_predictions(gt, seed=6))
    for m in matches:
        alone = accumulate([m], category_ids).stats["AP"]
        assert video_ap(m) == alone if alone >= 0 else np.isnan(video_ap(m))
