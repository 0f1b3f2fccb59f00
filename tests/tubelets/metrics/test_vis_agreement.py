"""The fast evaluator against the loop-based reference (``reference_ytvoseval.py``),
on random ground truth and noisy predictions with every awkward case."""

import importlib.util
import pathlib

import numpy as np
import pytest

from tubelets.metrics.vis import evaluate
from tubelets.synth.predictions import noisy_predictions, random_gt

_spec = importlib.util.spec_from_file_location(
    "reference_ytvoseval", pathlib.Path(__file__).with_name("reference_ytvoseval.py"))
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

# name: (random_gt knobs, noisy_predictions knobs, seeds)
SCENARIOS = {
    "default": ({}, {}, range(0, 60)),
    "unknown_categories_and_short_or_long_lists": ({}, dict(unknown_category_rate=0.1, length_error_rate=0.2),
                                                   range(100, 130)),
    "crowd_and_duplicates": (dict(crowd_rate=0.5), dict(duplicate_rate=0.8, max_shift=1, miss_rate=0.0),
                             range(200, 230)),
    "many_null_frames": (dict(null_frame_rate=0.6, all_null_rate=0.2), dict(frame_drop_rate=0.5, all_null_rate=0.3),
                         range(300, 320)),
    "coarse_scores_many_ties": ({}, dict(score_decimals=1, duplicate_rate=0.5), range(400, 420)),
    "over_100_per_video_and_category": (dict(videos=2, categories=1, empty_categories=0, tracks=(1, 3),
                                             sizes=((20, 24),), frames=(2, 3)),
                                        dict(false_positives=(95, 140), skip_video_rate=0.0), range(500, 506)),
    "videos_without_tracks_or_predictions": (dict(tracks=(0, 2)), dict(skip_video_rate=0.5), range(600, 620)),
}


def _cases():
    for name, (gt_knobs, pred_knobs, seeds) in SCENARIOS.items():
        for seed in seeds:
            yield pytest.param(gt_knobs, pred_knobs, seed, id=f"{name}-{seed}")


def assert_agrees(gt, results):
    fast, ref = evaluate(gt, results), reference.reference_evaluate(gt, results)
    for name, value in ref["stats"].items():
        assert fast.stats[name] == pytest.approx(value, abs=1e-9), name
    assert fast.per_category.keys() == ref["per_category"].keys()
    for cat, value in ref["per_category"].items():
        assert fast.per_category[cat] == pytest.approx(value, abs=1e-9)
        assert fast.per_category_ap50[cat] == pytest.approx(ref["per_category_ap50"][cat], abs=1e-9)
    # Stronger than the summaries: the whole precision/recall tables are identical.
    assert list(fast.category_ids) == ref["cat_ids"]
    np.testing.assert_array_equal(fast.precision, ref["precision"])
    np.testing.assert_array_equal(fast.recall, ref["recall"])
    return fast


@pytest.mark.parametrize("gt_knobs, pred_knobs, seed", list(_cases()))
def test_agrees_with_reference(gt_knobs, pred_knobs, seed):
    gt = random_gt(seed, **{"videos": 5, **gt_knobs})
    assert_agrees(gt, noisy_predictions(gt, seed, **pred_knobs))


def test_scenarios_reach_the_cases_they_are_for():
    """The random inputs do contain what the agreement tests claim to cover."""
    gt = random_gt(500, **SCENARIOS["over_100_per_video_and_category"][0])
    results = noisy_predictions(gt, 500, **SCENARIOS["over_100_per_video_and_category"][1])
    per_video = np.bincount([r["video_id"] for r in results])
    assert per_video.max() > 100
    seen = {"crowd": 0, "null": 0, "medium": 0, "large": 0, "unknown": 0, "length": 0}
    for seed in SCENARIOS["unknown_categories_and_short_or_long_lists"][2]:
        gt = random_gt(seed, videos=5)
        results = noisy_predictions(gt, seed, unknown_category_rate=0.1, length_error_rate=0.2)
        lengths = {v["id"]: v["length"] for v in gt["videos"]}
        metrics = evaluate(gt, results)
        seen["crowd"] += any(a["iscrowd"] for a in gt["annotations"])
        seen["null"] += any(s is None for a in gt["annotations"] for s in a["segmentations"])
        seen["medium"] += metrics.stats["APm"] > 0
        seen["large"] += metrics.stats["APl"] > -1
        seen["unknown"] += any(r["category_id"] not in metrics.category_ids for r in results)
        seen["length"] += any(len(r["segmentations"]) != lengths[r["video_id"]] for r in results)
    assert all(count > 0 for count in seen.values()), seen


def test_empty_results_and_empty_ground_truth_agree():
    gt = random_gt(7, videos=3)
    metrics = assert_agrees(gt, [])
    assert metrics.stats["AP"] == 0.0 and metrics.stats["AR100"] == 0.0
    empty_gt = random_gt(8, videos=3, tracks=(0, 0))
    false_positives_only = noisy_predictions(empty_gt, 8, false_positives=(1, 2), skip_video_rate=0.0)
    assert false_positives_only
    metrics = assert_agrees(empty_gt, false_positives_only)
    assert set(metrics.stats.values()) == {-1.0} and metrics.per_category == {}
