"""Hand-computed YouTube-VIS scores, bad input and the file entry point."""

import json

import numpy as np
import pytest

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.metrics.vis import METRIC_NAMES, evaluate, score_files


def box(height, width, y0, x0, y1, x1):
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def rles(frames):
    return [masks.encode(m) if m is not None else None for m in frames]


def ground_truth(videos, annotations, categories=(1,)):
    """``videos``: {id: (height, width, length)}; ``annotations``: (id, video, category, frames, iscrowd)."""
    return {
        "videos": [{"id": v, "height": h, "width": w, "length": n} for v, (h, w, n) in videos.items()],
        "categories": [{"id": c, "name": f"c{c}"} for c in categories],
        "annotations": [{"id": i, "video_id": v, "category_id": c, "iscrowd": crowd, "segmentations": rles(frames),
                         "areas": [int(m.sum()) if m is not None else None for m in frames]}
                        for i, v, c, frames, crowd in annotations],
    }


def prediction(video, category, score, frames):
    return {"video_id": video, "category_id": category, "score": score, "segmentations": rles(frames)}


SMALL = box(20, 20, 2, 2, 7, 4)  # 10 pixels
# A lone true positive has precision 1 / (1 + eps) in the official formula.
ONE = pytest.approx(1.0, abs=1e-12)


def test_perfect_predictions_score_one_and_absent_area_ranges_minus_one():
    frames = [SMALL, None, box(20, 20, 5, 5, 9, 9)]
    gt = ground_truth({1: (20, 20, 3), 2: (20, 20, 3)},
                      [(1, 1, 1, frames, 0), (2, 2, 1, frames, 0), (3, 2, 2, frames[::-1], 0)], categories=(1, 2, 3))
    results = [prediction(1, 1, 0.9, frames), prediction(2, 1, 0.8, frames), prediction(2, 2, 0.7, frames[::-1])]
    stats = evaluate(gt, results).stats
    assert list(stats) == list(METRIC_NAMES)
    for name in ("AP", "AP50", "AP75", "APs", "AR1", "AR10", "AR100", "ARs"):
        assert stats[name] == ONE, name
    for name in ("APm", "APl", "ARm", "ARl"):
        assert stats[name] == -1.0, name


def test_one_frame_missed_halves_the_video_iou():
    gt = ground_truth({1: (20, 20, 2)}, [(1, 1, 1, [SMALL, SMALL], 0)])
    # IoU = 10 / (10 + 10) = 0.5, exactly the lowest threshold: matched there only.
    metrics = evaluate(gt, [prediction(1, 1, 0.9, [SMALL, None])])
    assert metrics["AP50"] == ONE and metrics["AP75"] == 0.0
    assert metrics["AP"] == pytest.approx(0.1, abs=1e-12) and metrics["AR100"] == pytest.approx(0.1, abs=1e-12)
    # A mask on a frame the ground truth leaves empty costs the same.
    gt_one = ground_truth({1: (20, 20, 2)}, [(1, 1, 1, [SMALL, None], 0)])
    assert evaluate(gt_one, [prediction(1, 1, 0.9, [SMALL, SMALL])])["AP"] == pytest.approx(0.1, abs=1e-12)


def test_short_segmentation_list_is_compared_frame_by_frame_up_to_its_length():
    gt = ground_truth({1: (20, 20, 2)}, [(1, 1, 1, [SMALL, SMALL], 0)])
    assert evaluate(gt, [prediction(1, 1, 0.9, [SMALL])])["AP"] == ONE


def _crowd_case(iscrowd):
    person, crowd = box(30, 30, 0, 0, 5, 5), box(30, 30, 10, 10, 20, 20)
    gt = ground_truth({1: (30, 30, 1)}, [(1, 1, 1, [person], 0), (2, 1, 1, [crowd], iscrowd)])
    results = [prediction(1, 1, 0.95, [crowd]), prediction(1, 1, 0.9, [crowd]), prediction(1, 1, 0.8, [person])]
    return evaluate(gt, results)


def test_crowd_ground_truth_absorbs_several_predictions():
    assert _crowd_case(iscrowd=1)["AP"] == ONE
    # Not crowd: TP, FP (ground truth taken), TP -> precision 1 up to recall 0.5, then 2/3.
    assert _crowd_case(iscrowd=0)["AP"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-12)


def test_area_ranges_are_closed_at_both_ends():
    side = box(200, 200, 0, 0, 128, 128)  # 128**2 pixels: both small and medium
    gt = ground_truth({1: (200, 200, 1)}, [(1, 1, 1, [side], 0)])
    stats = evaluate(gt, [prediction(1, 1, 0.9, [side])]).stats
    assert (stats["APs"], stats["APm"], stats["APl"]) == (ONE, ONE, -1.0)
    # The ground truth's own ``areas`` decide its range: mean 16383.5 is small only.
    gt["annotations"][0].update(segmentations=rles([side, side]), areas=[16383, 16384])
    stats = evaluate(gt, [prediction(1, 1, 0.9, [side, side])]).stats
    assert (stats["APs"], stats["APm"]) == (ONE, -1.0)


def test_unmatched_prediction_outside_the_area_range_is_ignored():
    gt = ground_truth({1: (300, 300, 1)}, [(1, 1, 1, [box(300, 300, 0, 0, 5, 5)], 0)])
    results = [prediction(1, 1, 0.9, [box(300, 300, 20, 20, 300, 300)]),
               prediction(1, 1, 0.5, [box(300, 300, 0, 0, 5, 5)])]
    stats = evaluate(gt, results).stats
    assert stats["AP"] == pytest.approx(0.5, abs=1e-12)  # the large false positive ranks first
    assert stats["APs"] == ONE and stats["APl"] == -1.0


def test_max_detections_are_per_video_and_category():
    a, b = box(20, 20, 0, 0, 4, 4), box(20, 20, 10, 10, 14, 14)
    gt = ground_truth({1: (20, 20, 1)}, [(1, 1, 1, [a], 0), (2, 1, 1, [b], 0)])
    stats = evaluate(gt, [prediction(1, 1, 0.9, [a]), prediction(1, 1, 0.8, [b])]).stats
    assert stats["AR1"] == 0.5 and stats["AR10"] == 1.0


def test_categories_without_ground_truth_are_left_out():
    gt = ground_truth({1: (20, 20, 1)}, [(1, 1, 1, [SMALL], 0)], categories=(1, 2, 3))
    metrics = evaluate(gt, [prediction(1, 1, 0.9, [SMALL]), prediction(1, 2, 0.95, [SMALL])])
    assert metrics["AP"] == ONE and metrics.per_category == {1: ONE} and metrics.per_category_ap50 == {1: ONE}


def test_predictions_of_unlisted_categories_are_dropped():
    gt = ground_truth({1: (20, 20, 1)}, [(1, 1, 1, [SMALL], 0)])
    metrics = evaluate(gt, [prediction(1, 1, 0.9, [SMALL]), prediction(1, 99, 0.95, [SMALL])])
    assert metrics["AP"] == ONE and metrics.num_predictions == 1


def test_a_match_to_ground_truth_id_zero_counts_as_unmatched_like_the_official_code():
    gt = ground_truth({1: (20, 20, 1)}, [(0, 1, 1, [SMALL], 0)])
    assert evaluate(gt, [prediction(1, 1, 0.9, [SMALL])])["AP"] == 0.0


def test_ground_truth_rle_forms_and_polygons_give_the_same_scores():
    from tubelets.synth.predictions import uncompressed_rle

    square = box(20, 20, 4, 4, 10, 10)
    gt = ground_truth({1: (20, 20, 1)}, [(1, 1, 1, [square], 0)])
    results = [prediction(1, 1, 0.9, [box(20, 20, 4, 4, 10, 9)])]
    expected = evaluate(gt, results).stats
    gt["annotations"][0]["segmentations"] = [uncompressed_rle(square)]
    assert evaluate(gt, results).stats == expected
    # Pixel (row y, column x) is covered by the polygon around [x, x+1] x [y, y+1] corners.
    gt["annotations"][0]["segmentations"] = [[[4, 4, 10, 4, 10, 10, 4, 10]]]
    assert evaluate(gt, results).stats == expected


def test_counts_and_json_form():
    gt = ground_truth({1: (20, 20, 1), 2: (20, 20, 1)}, [(1, 1, 1, [SMALL], 0), (2, 1, 1, [SMALL], 1)],
                      categories=(1, 4))
    metrics = evaluate(gt, [prediction(1, 1, 0.9, [SMALL])] * 3)
    out = json.loads(json.dumps(metrics.to_dict()))
    assert (out["videos"], out["gt_instances"], out["predictions"]) == (2, 2, 3)
    assert out["per_category"] == {"1": {"AP": ONE, "AP50": ONE}}
    assert set(METRIC_NAMES) <= set(out)


@pytest.mark.parametrize("mutate, message", [
    (lambda gt, res: res.append(prediction(42, 1, 0.5, [SMALL])), "does not list"),
    (lambda gt, res: res.append(prediction(1, 1, 0.5, [box(21, 20, 0, 0, 2, 2)])), "prediction 1: frame 0 is 21 x 20"),
    (lambda gt, res: res.__setitem__(0, prediction(1, 1, 0.5, [box(21, 20, 0, 0, 2, 2)])), "masks are 21 x 20"),
    (lambda gt, res: res[0]["segmentations"][0].update(counts="0P"), "prediction 0: frame 0: malformed RLE"),
    (lambda gt, res: res[0]["segmentations"][0].update(counts="45"), "malformed RLE.*add up to 20 x 20"),
    (lambda gt, res: gt["annotations"][0]["segmentations"].__setitem__(0, {"size": [20, 20], "counts": [399, -1, 2]}),
     "annotation id 1: frame 0: malformed RLE"),
    (lambda gt, res: gt["annotations"].append(dict(gt["annotations"][0])), "duplicate annotation id"),
    (lambda gt, res: res.append(prediction(1, 1, "high", [SMALL])), "score must be a number"),
    (lambda gt, res: res.append({"video_id": 1, "category_id": 1, "score": 0.5}), "missing 'segmentations'"),
    (lambda gt, res: res.append({**prediction(1, 1, 0.5, []), "segmentations": [{"size": [20, 20]}]}), "not an RLE"),
    (lambda gt, res: gt.pop("videos"), "'videos'"),
])
def test_bad_input_raises_one_clear_error(mutate, message):
    gt = ground_truth({1: (20, 20, 1)}, [(1, 1, 1, [SMALL], 0)])
    results = [prediction(1, 1, 0.9, [SMALL])]
    mutate(gt, results)
    with pytest.raises(DatasetError, match=message):
        evaluate(gt, results)


def test_results_must_be_a_list():
    gt = ground_truth({1: (20, 20, 1)}, [(1, 1, 1, [SMALL], 0)])
    with pytest.raises(DatasetError, match="list of predictions"):
        evaluate(gt, {"annotations": []})


def test_score_files_reads_json_and_names_bad_files(tmp_path):
    gt = ground_truth({1: (20, 20, 2)}, [(1, 1, 1, [SMALL, SMALL], 0)])
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps([prediction(1, 1, 0.9, [SMALL, None])]))
    scores = score_files(str(gt_path), str(res_path))
    assert scores["AP50"] == ONE and scores["AP"] == pytest.approx(0.1, abs=1e-12)
    with pytest.raises(DatasetError, match="missing.json"):
        score_files(str(gt_path), str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(DatasetError, match="broken.json.*not valid JSON"):
        score_files(str(gt_path), str(tmp_path / "broken.json"))
    res_path.write_text(json.dumps([prediction(7, 1, 0.9, [SMALL])]))
    with pytest.raises(DatasetError, match="results.json"):
        score_files(str(gt_path), str(res_path))
