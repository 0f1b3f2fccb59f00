import numpy as np
import pytest

from tubelets import tables
from tubelets.metrics.class_iou import SCOPE, ClassIoU, class_iou_rows


def labels(*rows: str) -> np.ndarray:
    """A label map from rows of digits: digit ``d`` is category ``d``'s instance 1 (``d * 1000 + 1``), 0 background."""
    digits = np.array([[int(c) for c in row] for row in rows], dtype=np.uint16)
    return np.where(digits > 0, digits * 1000 + 1, 0).astype(np.uint16)


@pytest.fixture
def scores() -> ClassIoU:
    """Two frames of 2 x 4 pixels (ground truth, prediction)."""
    scores = ClassIoU()
    # Frame 0: disc (1): truth 4 pixels, predicted 4, 2 shared. Box (2): predicted on 1 background pixel.
    # Triangle (3): truth 1 pixel, predicted there.
    scores.add(predicted=labels("0011", "1123"), ground_truth=labels("1111", "0003"))
    # Frame 1: disc: truth 2 pixels, nothing predicted.
    scores.add(predicted=labels("0000", "0000"), ground_truth=labels("1100", "0000"))
    return scores


def test_the_iou_sums_intersections_and_unions_over_all_frames(scores):
    # disc: (2 + 0) / (6 + 2), not the mean of the frames' 2/6 and 0/2; box: only predicted, 0; triangle: 1.
    assert scores.intersection_union() == {1: (2, 8), 2: (0, 1), 3: (1, 1)}
    assert scores.iou() == {1: 0.25, 2: 0.0, 3: 1.0}
    assert scores.mean_iou() == pytest.approx((0.25 + 0.0 + 1.0) / 3)


def test_instances_do_not_enter_only_categories_do():
    scores = ClassIoU()
    scores.add(predicted=np.array([[3001, 3002]], np.uint16), ground_truth=np.array([[3002, 3007]], np.uint16))
    assert scores.iou() == {3: 1.0}


def test_nothing_seen_has_no_mean_and_sizes_must_agree():
    scores = ClassIoU()
    scores.add(np.zeros((2, 2), np.uint16), np.zeros((2, 2), np.uint16))
    assert scores.iou() == {} and scores.mean_iou() is None
    with pytest.raises(ValueError, match="differ in size"):
        scores.add(np.zeros((2, 2), np.uint16), np.zeros((2, 3), np.uint16))


def test_rows_are_the_mean_then_each_category_and_fit_the_metrics_table(scores):
    counts = {"num_videos": 1, "num_gt_instances": 3, "num_predictions": 4}
    rows = class_iou_rows(scores, "gs://b/gt", "ipdt", {1: "disc", 3: "triangle"}, counts)
    assert [(r["scope"], r["category_id"], r["category_name"], r["iou"]) for r in rows] == [
        (SCOPE, None, None, pytest.approx(1.25 / 3)), (SCOPE, 1, "disc", 0.25), (SCOPE, 2, "2", 0.0),
        (SCOPE, 3, "triangle", 1.0)]
    assert all(r["task"] == "vis" and r["dataset"] == "gs://b/gt" and r["num_gt_instances"] == 3 for r in rows)
    table = tables.to_arrow([{**row, "run_id": "r"} for row in rows], tables.METRICS)
    assert table.column("iou").to_pylist()[1:] == [0.25, 0.0, 1.0] and table.column("AP").null_count == 4
