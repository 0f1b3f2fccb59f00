import numpy as np
import pytest

from tubelets import masks
from tubelets.models.tubelet_ops import box_iou, finalize_tubelet, frame_of, majority_label, number_tubelets
from tubelets.records import FrameDetections, Tubelet, TubeletFrame

HEIGHT, WIDTH = 48, 64


def _frame(frame, x, score, size=10, empty=False):
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    if not empty:
        mask[5 : 5 + size, x : x + size] = 1
    return TubeletFrame(frame, masks.encode(mask), np.array([x, 5, x + size, 5 + size], np.float32), score)


def test_box_iou_known_values_and_empty_inputs():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 10]], np.float32)  # the second box has no area
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 1, 0], [0, 0, 0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)
    assert box_iou(a, np.zeros((0, 4))).shape == (2, 0)


def test_box_iou_matches_torchvision():
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 50, size=(2, 20, 2))
    sizes = rng.uniform(1, 20, size=(2, 20, 2))
    a, b = (np.concatenate([c, c + s], axis=1) for c, s in zip(corners, sizes))
    expected = ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=1e-6)


def test_majority_label_rules():
    assert majority_label([3, 1, 3, 2], [0.1, 0.9, 0.1, 0.9]) == 3  # count beats score
    assert majority_label([1, 2, 2, 1], [0.3, 0.5, 0.4, 0.3]) == 2  # tie: larger summed score
    assert majority_label([5, 4], [0.5, 0.5]) == 4  # full tie: smaller id
    with pytest.raises(ValueError):
        majority_label([], [])
    with pytest.raises(ValueError):
        majority_label([1, 2], [0.5])


def test_finalize_sorts_drops_empty_masks_and_averages_valid_frames():
    frames = [_frame(2, 20, 0.6), _frame(0, 10, 0.8), _frame(1, 15, 0.1, empty=True)]
    tubelet = finalize_tubelet(7, frames, labels=[2, 1, 2], scores=[0.6, 0.8, 0.1])
    assert tubelet.tubelet_id == 7 and tubelet.category_id == 2
    assert [item.frame for item in tubelet.frames] == [0, 2]
    assert tubelet.score == pytest.approx(0.7)
    assert tubelet.mask_at(1) is None and tubelet.mask_at(2) is frames[0].mask


def test_finalize_without_a_valid_mask_and_with_duplicate_frames():
    assert finalize_tubelet(0, [_frame(0, 10, 0.9, empty=True)], [1], [0.9]) is None
    with pytest.raises(ValueError, match="two masks in one frame"):
        finalize_tubelet(0, [_frame(1, 10, 0.9), _frame(1, 12, 0.8)], [1, 1], [0.9, 0.8])


def test_number_tubelets_orders_by_first_frame_and_keeps_ties_in_order():
    tubelets = [Tubelet(9, 1, 0.5, [_frame(3, 10, 0.5)]), Tubelet(4, 2, 0.5, [_frame(0, 10, 0.5)]),
                Tubelet(2, 3, 0.5, [_frame(3, 30, 0.5)])]
    numbered = number_tubelets(tubelets)
    assert [(t.tubelet_id, t.category_id) for t in numbered] == [(0, 2), (1, 1), (2, 3)]
    assert [t.tubelet_id for t in tubelets] == [9, 4, 2]  # copies, the input is untouched
    assert number_tubelets([]) == []


def test_frame_of_copies_one_detection():
    detections = FrameDetections(
        4, np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32), np.array([0.5, 0.25], np.float32),
        np.array([1, 2], np.int64), [{"size": [2, 2], "counts": "04"}, {"size": [2, 2], "counts": "13"}],
    )
    item = frame_of(detections, 1)
    assert item.frame == 4 and item.score == 0.25 and item.mask["counts"] == "13"
    np.testing.assert_array_equal(item.box, [5, 6, 7, 8])
