"""Random YouTube-VIS ground truth and noisy predictions."""

import json

import numpy as np
import pytest

from tubelets import masks
from tubelets.metrics.vis import evaluate
from tubelets.synth.predictions import noisy_predictions, random_gt, uncompressed_rle

# Every knob off: one exact prediction per ground-truth track.
EXACT = dict(miss_rate=0.0, wrong_class_rate=0.0, frame_drop_rate=0.0, extra_frame_rate=0.0, max_shift=0,
             morph_rate=0.0, duplicate_rate=0.0, false_positives=(0, 0), all_null_rate=0.0, skip_video_rate=0.0)


def test_same_seed_same_data_and_json_ready():
    gt, results = random_gt(11, videos=3), noisy_predictions(random_gt(11, videos=3), 11)
    assert gt == random_gt(11, videos=3) and results == noisy_predictions(gt, 11)
    assert gt != random_gt(12, videos=3)
    assert json.loads(json.dumps(gt)) == gt and json.loads(json.dumps(results)) == results


def test_ground_truth_has_the_awkward_cases():
    seen = {"crowd": 0, "null_frame": 0, "all_null": 0, "uncompressed": 0, "no_tracks": 0}
    for seed in range(12):
        gt = random_gt(seed, videos=4, categories=3, empty_categories=2, all_null_rate=0.2)
        listed = [c["id"] for c in gt["categories"]]
        used = {a["category_id"] for a in gt["annotations"]}
        assert len(listed) == len(set(listed)) == 5 and len(used) <= 3 and used <= set(listed)
        assert sorted(a["id"] for a in gt["annotations"]) == list(range(1, len(gt["annotations"]) + 1))
        videos = {v["id"]: v for v in gt["videos"]}
        for ann in gt["annotations"]:
            video = videos[ann["video_id"]]
            assert len(ann["segmentations"]) == len(ann["areas"]) == video["length"]
            for seg, area in zip(ann["segmentations"], ann["areas"]):
                if seg is not None:
                    assert seg["size"] == [video["height"], video["width"]] and masks.area(seg) == area
            seen["crowd"] += ann["iscrowd"]
            seen["null_frame"] += None in ann["segmentations"]
            seen["all_null"] += all(s is None for s in ann["segmentations"])
            seen["uncompressed"] += any(s is not None and isinstance(s["counts"], list) for s in ann["segmentations"])
        seen["no_tracks"] += len({a["video_id"] for a in gt["annotations"]}) < len(videos)
    assert all(seen.values()), seen


def test_exact_predictions_score_one():
    gt = random_gt(2, videos=4, tracks=(1, 3), crowd_rate=0.3)
    # A track whose masks are all empty (it left the frame) has IoU 0 with anything.
    gt["annotations"] = [a for a in gt["annotations"] if any(a["areas"])]
    results = noisy_predictions(gt, 2, **EXACT)
    assert len(results) == len(gt["annotations"])
    stats = evaluate(gt, results).stats
    assert stats["AP"] == pytest.approx(1.0, abs=1e-12) and stats["AR100"] == pytest.approx(1.0, abs=1e-12)


def test_noise_lowers_the_scores_and_scores_follow_quality():
    gt = random_gt(3, videos=8, tracks=(2, 4), crowd_rate=0.0)
    noisy = noisy_predictions(gt, 3, max_shift=3, false_positives=(2, 4))
    assert evaluate(gt, noisy)["AP"] < 0.9
    assert all(0 <= r["score"] <= 1 and round(r["score"], 2) == r["score"] for r in noisy)
    assert len({r["score"] for r in noisy}) < len(noisy)  # rounded scores tie


def test_knobs_do_what_they_say():
    gt = random_gt(4, videos=5, tracks=(1, 3))
    lengths = {v["id"]: v["length"] for v in gt["videos"]}
    listed = {c["id"] for c in gt["categories"]}
    assert noisy_predictions(gt, 4, skip_video_rate=1.0) == []
    unknown = noisy_predictions(gt, 4, unknown_category_rate=1.0, skip_video_rate=0.0)
    assert unknown and all(r["category_id"] not in listed for r in unknown)
    wrong_length = noisy_predictions(gt, 4, length_error_rate=1.0, skip_video_rate=0.0)
    assert all(len(r["segmentations"]) != lengths[r["video_id"]] for r in wrong_length)
    only_false = noisy_predictions(gt, 4, miss_rate=1.0, false_positives=(2, 2), all_null_rate=1.0, skip_video_rate=0.0)
    assert len(only_false) == 3 * len(lengths)
    assert sum(all(s is None for s in r["segmentations"]) for r in only_false) >= len(lengths)
    doubled = noisy_predictions(gt, 4, **{**EXACT, "duplicate_rate": 1.0})
    assert len(doubled) == 2 * len(gt["annotations"])


def test_uncompressed_rle_round_trips():
    rng = np.random.default_rng(0)
    for mask in (rng.random((7, 5)) < 0.5, np.ones((3, 4), bool), np.zeros((3, 4), bool)):
        rle = uncompressed_rle(mask)
        assert all(isinstance(c, int) for c in rle["counts"])
        np.testing.assert_array_equal(masks.decode(rle), mask.astype(np.uint8))

