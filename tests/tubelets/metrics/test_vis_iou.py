"""Exact video IoU from RLEs, against dense numpy masks."""

import numpy as np
import pytest

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.metrics.vis_tracks import prediction_tracks
from tubelets.metrics.vis_iou import frame_ious, video_iou


def random_track(rng, height, width, length, category=1, null_rate=0.3):
    frames = []
    for _ in range(length):
        if rng.random() < null_rate:
            frames.append(None)
            continue
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        mask = np.zeros((height, width), dtype=bool)
        mask[y0:y0 + rng.integers(1, height), x0:x0 + rng.integers(1, width)] = True
        mask ^= rng.random((height, width)) < 0.02  # holes and specks: many runs
        frames.append(mask)
    return frames


def dense_iou(pred, gt):
    inter = union = 0
    for p, g in zip(pred, gt):
        if p is None and g is None:
            continue
        p = np.zeros_like(g) if p is None else p
        g = np.zeros_like(p) if g is None else g
        inter += int((p & g).sum())
        union += int((p | g).sum())
    return inter / union if union else 0.0


def tracks(frames_list, categories, height, width):
    records = [{"video_id": 1, "category_id": c, "score": 0.5,
                "segmentations": [masks.encode(m) if m is not None else None for m in frames]}
               for frames, c in zip(frames_list, categories)]
    return prediction_tracks(records, {"id": 1, "height": height, "width": width}, "test")


@pytest.mark.parametrize("height, width, seed", [(9, 7, 0), (31, 40, 1), (1080, 1920, 2)])
def test_matches_dense_masks_bit_for_bit(height, width, seed):
    rng = np.random.default_rng(seed)
    length = 3 if height > 100 else 6
    # Lists of different lengths: pairs compare up to the shorter one.
    dets = [random_track(rng, height, width, length - (i % 2)) for i in range(4)]
    gts = [random_track(rng, height, width, length) for _ in range(3)]
    ious = video_iou(tracks(dets, [1, 1, 2, 1], height, width), tracks(gts, [1, 2, 1], height, width))
    expected = np.array([[dense_iou(d, g) if dc == gc else 0.0 for g, gc in zip(gts, [1, 2, 1])]
                         for d, dc in zip(dets, [1, 1, 2, 1])])
    assert ious.dtype == np.float64 and ious.shape == (4, 3)
    np.testing.assert_array_equal(ious, expected)
    assert (ious > 0).any()


def test_large_masks_keep_exact_integer_intersections():
    full = np.ones((2000, 3000), dtype=bool)
    almost = full.copy()
    almost[0, 0] = False
    det, gt = tracks([[almost]], [1], 2000, 3000), tracks([[full]], [1], 2000, 3000)
    assert video_iou(det, gt)[0, 0] == (6_000_000 - 1) / 6_000_000


def test_empty_inputs_and_all_null_tracks():
    some = tracks([[np.ones((4, 4), bool)]], [1], 4, 4)
    none = tracks([], [], 4, 4)
    assert video_iou(none, some).shape == (0, 1) and video_iou(some, none).shape == (1, 0)
    nulls = tracks([[None, None]], [1], 4, 4)
    assert video_iou(nulls, tracks([[None, None]], [1], 4, 4))[0, 0] == 0.0
    assert video_iou(nulls, some)[0, 0] == 0.0


def test_masks_of_different_sizes_are_an_error():
    a, b = tracks([[np.ones((4, 4), bool)]], [1], 4, 4), tracks([[np.ones((4, 5), bool)]], [1], 4, 5)
    with pytest.raises(DatasetError, match="video 7: predicted masks are 4 x 4, ground-truth masks 4 x 5"):
        video_iou(a, b, video_id=7)
    with pytest.raises(DatasetError, match="prediction 1: frame 0 is 4 x 5 but other masks of the video are 4 x 4"):
        tracks([[np.ones((4, 4), bool)], [np.ones((4, 5), bool)]], [1, 1], 4, 4)


def frame_iou(p, g):
    """Mask IoU of one frame (0 when either mask is absent)."""
    if p is None or g is None:
        return 0.0
    union = int((p | g).sum())
    return int((p & g).sum()) / union if union else 0.0


def test_frame_ious_are_each_frames_mask_iou_whatever_the_category():
    rng = np.random.default_rng(3)
    dets = [random_track(rng, 12, 10, 5 - (i % 2)) for i in range(3)]
    gts = [dets[0], random_track(rng, 12, 10, 5)]  # the first follows a prediction: some frames match exactly
    ious = frame_ious(tracks(dets, [1, 2, 1], 12, 10), tracks(gts, [2, 1], 12, 10))
    expected = np.array([[[frame_iou(d[f], g[f]) if f < len(d) else 0.0 for f in range(5)] for g in gts]
                         for d in dets])
    assert ious.shape == (3, 2, 5)
    np.testing.assert_array_equal(ious, expected)
    assert (ious == 1).any() and ((ious > 0) & (ious < 1)).any()
