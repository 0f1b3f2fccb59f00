"""Greedy matching rules and the per-video / global split."""

import pickle

import numpy as np
import pytest

from tubelets.metrics.vis import accumulate, evaluate
from tubelets.metrics.vis_data import group_results, index_ground_truth
from tubelets.metrics.vis_match import greedy_match, match_video
from tubelets.metrics.vis_params import IOU_THRESHOLDS
from tubelets.synth.predictions import noisy_predictions, random_gt

NO_IGNORE = np.zeros((4, 2), dtype=bool)
T50, T75 = 0, int(np.flatnonzero(IOU_THRESHOLDS == 0.75)[0])


def test_best_iou_wins_and_ties_go_to_the_later_ground_truth():
    picks = greedy_match(np.array([[0.6, 0.8], [0.7, 0.7]]), NO_IGNORE, np.zeros(2, bool))
    assert picks[0, T50].tolist() == [1, 0]  # the second prediction takes what is left
    picks = greedy_match(np.array([[0.7, 0.7]]), NO_IGNORE, np.zeros(2, bool))
    assert picks[0, T50, 0] == 1
    assert picks[0, T75, 0] == -1


def test_iou_equal_to_the_threshold_matches():
    picks = greedy_match(np.array([[0.75]]), np.zeros((4, 1), bool), np.zeros(1, bool))
    assert (picks[0, : T75 + 1, 0] == 0).all() and (picks[0, T75 + 1:, 0] == -1).all()


def test_regular_ground_truth_beats_a_better_ignored_one_and_crowd_is_reusable():
    ignore = np.zeros((4, 2), dtype=bool)
    ignore[:, 1] = True  # the second is crowd
    picks = greedy_match(np.array([[0.6, 0.9], [0.6, 0.9], [0.95, 0.9]]), ignore, np.array([False, True]))
    assert picks[0, T50].tolist() == [0, 1, 1]
    # An ignored ground truth that is not crowd is taken once only.
    picks = greedy_match(np.array([[0.9], [0.9]]), np.ones((4, 1), bool), np.zeros(1, bool))
    assert picks[0, T50].tolist() == [0, -1]


def test_no_ground_truth_or_no_predictions():
    assert greedy_match(np.zeros((3, 0)), np.zeros((4, 0), bool), np.zeros(0, bool)).shape == (4, 10, 3)
    assert greedy_match(np.zeros((0, 2)), NO_IGNORE, np.zeros(2, bool)).shape == (4, 10, 0)


def test_per_video_matches_survive_pickling_and_any_order():
    gt = random_gt(3, videos=6)
    results = noisy_predictions(gt, 3, false_positives=(20, 30))
    index = index_ground_truth(gt)
    by_video = group_results(results, index)
    matches = [match_video(index.videos[v], index.annotations_by_video.get(v, []), by_video.get(v, []))
               for v in index.video_ids]
    shipped = [pickle.loads(pickle.dumps(m)) for m in reversed(matches)]
    assert max(len(pickle.dumps(m)) for m in matches) < 64_000
    split, whole = accumulate(shipped, index.category_ids), evaluate(gt, results)
    assert split.stats == whole.stats and split.per_category == whole.per_category
    np.testing.assert_array_equal(split.precision, whole.precision)


def test_match_video_drops_unlisted_categories_itself():
    gt = random_gt(4, videos=1, tracks=(2, 2))
    video, anns = gt["videos"][0], gt["annotations"]
    preds = noisy_predictions(gt, 4, skip_video_rate=0.0, unknown_category_rate=1.0)
    allowed = [c["id"] for c in gt["categories"]]
    matches = match_video(video, anns, preds, allowed)
    assert matches.num_predictions == 0 and len(matches.det_category) == 0
    assert matches.num_gt == len(anns)


def test_accumulate_rejects_the_same_video_twice():
    gt = random_gt(5, videos=1)
    match = match_video(gt["videos"][0], gt["annotations"], [])
    with pytest.raises(ValueError, match="same video twice"):
        accumulate([match, match])
