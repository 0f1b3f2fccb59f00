import math

import numpy as np
import pytest
from scipy import ndimage

from tubelets.errors import DatasetError
from tubelets.metrics import davis

# --------------------------------------------------------------------------- reference
# A plain, frame-by-frame transcription of the davis2017-evaluation algorithm,
# built from the official building blocks (skimage's disk, OpenCV's dilate).


@pytest.fixture(scope="module")
def official():
    cv2 = pytest.importorskip("cv2")
    morphology = pytest.importorskip("skimage.morphology")
    return cv2, morphology


def ref_jaccard(gt, pred):
    inter, union = np.sum(gt & pred), np.sum(gt | pred)
    return 1.0 if union == 0 else inter / union


def ref_seg2bmap(seg):
    seg = seg.astype(bool)
    east, south, south_east = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    edge = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    edge[-1, :] = seg[-1, :] ^ east[-1, :]
    edge[:, -1] = seg[:, -1] ^ south[:, -1]
    edge[-1, -1] = False
    return edge


def ref_f(official, gt, pred, bound_th=0.008):
    cv2, morphology = official
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(pred.shape))
    kernel = morphology.disk(bound_pix).astype(np.uint8)
    pred_edge, gt_edge = ref_seg2bmap(pred), ref_seg2bmap(gt)
    pred_dil = cv2.dilate(pred_edge.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_edge.astype(np.uint8), kernel)
    n_pred, n_gt = np.sum(pred_edge), np.sum(gt_edge)
    if n_pred == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_pred > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_pred == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(pred_edge * gt_dil) / float(n_pred)
        recall = np.sum(gt_edge * pred_dil) / float(n_gt)
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def ref_statistics(values):
    mean, recall = np.nanmean(values), np.nanmean(values > 0.5)
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
    bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    return mean, recall, np.nanmean(bins[0]) - np.nanmean(bins[3])


def ref_sequence(official, gt_ids, pred_ids):
    """Per-object (J stats, F stats) the way the official semi-supervised run gets them."""
    gt_ids = np.where(gt_ids == 255, 0, gt_ids)
    n_gt = int(gt_ids[0].max())
    gt = np.stack([gt_ids == k for k in range(1, n_gt + 1)])[:, 1:-1]
    pred_scored = pred_ids[1:-1]
    n_pred = int(pred_scored.max())
    padding = [np.zeros_like(gt[0])] * (n_gt - n_pred)  # objects never predicted
    pred = np.stack([pred_scored == k for k in range(1, n_pred + 1)] + padding)
    rows = []
    for obj in range(n_gt):
        j = np.array([ref_jaccard(g, p) for g, p in zip(gt[obj], pred[obj])])
        f = np.array([ref_f(official, g, p) for g, p in zip(gt[obj], pred[obj])])
        rows.append((ref_statistics(j), ref_statistics(f), j, f))
    return rows


# --------------------------------------------------------------------------- inputs


def _blob(rng, shape, smooth=None):
    smooth = smooth or max(1.0, min(shape) / 6)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), smooth)
    return field > np.quantile(field, rng.uniform(0.3, 0.9))


def _box(shape, y0, x0, y1, x1):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _frame_pairs(rng, shape):
    """(gt, pred) pairs covering blobs, empty, full, noise and shifted masks."""
    blob = _blob(rng, shape)
    empty, full = np.zeros(shape, bool), np.ones(shape, bool)
    noise = rng.random(shape) > 0.5
    return [
        (blob, _blob(rng, shape)),
        (blob, np.roll(blob, (1, -2), axis=(0, 1))),
        (blob, ndimage.binary_dilation(blob, iterations=2)),
        (empty, blob),
        (blob, empty),
        (empty, empty),
        (full, full),
        (full, blob),
        (noise, rng.random(shape) > 0.5),
        (noise, noise),
    ]


def _stack(pairs):
    return np.stack([g for g, _ in pairs]), np.stack([p for _, p in pairs])


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (2, 2), (7, 13), (31, 17), (64, 96)])
@pytest.mark.parametrize("bound_th", [0.008, 0.05, 0, 3])
def test_per_frame_scores_match_the_reference(official, shape, bound_th):
    rng = np.random.default_rng(sum(shape) * 7 + int(bound_th * 1000))
    gt, pred = _stack(_frame_pairs(rng, shape))
    expected_j = [ref_jaccard(g, p) for g, p in zip(gt, pred)]
    expected_f = [ref_f(official, g, p, bound_th) for g, p in zip(gt, pred)]
    np.testing.assert_allclose(davis.region_similarity(gt, pred), expected_j, rtol=0, atol=1e-9)
    np.testing.assert_allclose(davis.boundary_f_measure(gt, pred, bound_th), expected_f, rtol=0, atol=1e-9)


def test_480p_frames_match_the_reference(official):
    rng = np.random.default_rng(480)
    shape = (480, 854)
    blob = _blob(rng, shape, smooth=40)
    gt = np.stack([blob, blob, _blob(rng, shape, smooth=25)])
    pred = np.stack([np.roll(blob, (6, -9), axis=(0, 1)), _blob(rng, shape, smooth=40), gt[2][::-1]])
    assert davis.boundary_tolerance(shape) == 8
    expected = [ref_f(official, g, p) for g, p in zip(gt, pred)]
    assert 0 < min(expected) and max(expected) < 1  # the tolerance matters in these frames
    np.testing.assert_allclose(davis.boundary_f_measure(gt, pred), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        davis.region_similarity(gt, pred), [ref_jaccard(g, p) for g, p in zip(gt, pred)], rtol=0, atol=1e-9
    )


def test_boundary_map_matches_seg2bmap():
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (1, 6), (6, 1), (5, 8), (16, 11)]:
        masks = np.stack([_blob(rng, shape), rng.random(shape) > 0.5, np.ones(shape, bool)])
        expected = np.stack([ref_seg2bmap(m) for m in masks])
        np.testing.assert_array_equal(davis.boundary_map(masks), expected)


def _label_maps(rng, num_frames, shape, num_objects):
    gt = np.zeros((num_frames, *shape), np.uint8)
    for t in range(num_frames):
        for obj in range(1, num_objects + 1):
            gt[t][_blob(rng, shape) & (rng.random() > 0.1)] = obj
    gt[0][:2, :2] = np.arange(1, num_objects + 1).max()  # every object is in the first frame
    gt[:, -3:, -3:] = 255  # void corner
    pred = np.where(rng.random(gt.shape) > 0.02, np.roll(gt, 1, axis=2), 0).astype(np.uint8)
    pred[pred == 255] = 0
    return gt, pred


def test_sequences_and_summary_match_the_reference(official):
    rng = np.random.default_rng(2017)
    gt_a, pred_a = _label_maps(rng, 9, (40, 56), 3)
    gt_b, pred_b = _label_maps(rng, 6, (33, 21), 2)
    pred_b[pred_b == 2] = 0  # the highest object is never predicted: zero-padded
    pred_a[pred_a == 2] = 0  # a middle object is never predicted
    results = [
        davis.evaluate_sequence(gt_a, pred_a, sequence="a"),
        davis.evaluate_sequence(gt_b, pred_b, sequence="b"),
    ]
    reference = [ref_sequence(official, gt_a, pred_a), ref_sequence(official, gt_b, pred_b)]
    for result, ref_rows in zip(results, reference):
        assert [o.object_id for o in result.objects] == list(range(1, len(ref_rows) + 1))
        for obj, (j_stats, f_stats, j, f) in zip(result.objects, ref_rows):
            np.testing.assert_allclose(obj.j, j, rtol=0, atol=1e-9)
            np.testing.assert_allclose(obj.f, f, rtol=0, atol=1e-9)
            np.testing.assert_allclose(
                [obj.j_stats.mean, obj.j_stats.recall, obj.j_stats.decay], j_stats, rtol=0, atol=1e-9
            )
            np.testing.assert_allclose(
                [obj.f_stats.mean, obj.f_stats.recall, obj.f_stats.decay], f_stats, rtol=0, atol=1e-9
            )
    all_rows = [row for rows in reference for row in rows]
    j_means, f_means = [r[0][0] for r in all_rows], [r[1][0] for r in all_rows]
    summary = davis.summarize(results)
    expected = {
        "J&F-Mean": (np.mean(j_means) + np.mean(f_means)) / 2,
        "J-Mean": np.mean(j_means),
        "J-Recall": np.mean([r[0][1] for r in all_rows]),
        "J-Decay": np.mean([r[0][2] for r in all_rows]),
        "F-Mean": np.mean(f_means),
        "F-Recall": np.mean([r[1][1] for r in all_rows]),
        "F-Decay": np.mean([r[1][2] for r in all_rows]),
    }
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value, abs=1e-9), key
    assert [row["name"] for row in summary["per_object"]] == ["a_1", "a_2", "a_3", "b_1", "b_2"]
    # an object never predicted scores 1 only where its ground truth is empty too
    absent_a = np.mean([not (frame == 2).any() for frame in gt_a[1:-1]])
    assert summary["per_object"][1]["J-Mean"] == summary["per_object"][1]["F-Mean"] == pytest.approx(absent_a)


# --------------------------------------------------------------------------- hand cases


def test_identical_disjoint_and_empty_masks():
    shape = (100, 100)
    square, far = _box(shape, 10, 10, 30, 30), _box(shape, 60, 60, 90, 90)
    empty, full = np.zeros(shape, bool), np.ones(shape, bool)
    gt = np.stack([square, square, empty, square, full, full])
    pred = np.stack([square, far, empty, empty, full, square])
    np.testing.assert_array_equal(davis.region_similarity(gt, pred), [1, 0, 1, 0, 1, 0.04])
    # a full mask has no boundary: full vs full agrees, full vs a square does not
    np.testing.assert_array_equal(davis.boundary_f_measure(gt, pred), [1, 0, 1, 0, 1, 0])


def test_one_pixel_shift_is_within_the_boundary_tolerance():
    shape = (100, 100)
    gt, pred = _box(shape, 20, 20, 60, 70)[None], _box(shape, 21, 19, 61, 69)[None]
    assert davis.boundary_tolerance(shape) == 2  # ceil(0.008 * 141.4)
    assert davis.boundary_f_measure(gt, pred)[0] == 1.0
    assert davis.region_similarity(gt, pred)[0] < 0.95
    assert davis.boundary_f_measure(gt, pred, bound_th=0)[0] < 0.1  # exact matching only


def test_void_pixels_leave_both_scores():
    shape = (20, 20)
    gt, pred = _box(shape, 2, 2, 10, 10)[None], _box(shape, 2, 2, 10, 14)[None]
    void = _box(shape, 0, 10, 20, 20)[None]
    assert davis.region_similarity(gt, pred)[0] == pytest.approx(64 / 96)
    assert davis.region_similarity(gt, pred, void)[0] == 1.0
    assert davis.boundary_f_measure(gt, pred, bound_th=1, void=void)[0] == 1.0


def test_boundary_tolerance():
    assert davis.boundary_tolerance((480, 854)) == 8
    assert davis.boundary_tolerance((1080, 1920), 0.008) == math.ceil(0.008 * math.hypot(1080, 1920))
    assert davis.boundary_tolerance((480, 854), 3) == 3
    for bad in (2.5, -0.1, float("nan")):
        with pytest.raises(ValueError):
            davis.boundary_tolerance((10, 10), bad)


def test_statistics_use_the_overlapping_quarters():
    stats = davis.frame_statistics(np.arange(8) / 10)
    assert stats.mean == pytest.approx(0.35)
    assert stats.recall == 0.25  # 0.6 and 0.7; 0.5 itself is not above 0.5
    assert stats.decay == pytest.approx(0.1 - 0.6)  # frames 0-2 vs 5-7, not 0-1 vs 6-7
    assert davis.frame_statistics([0.9]).decay == 0
    assert davis.frame_statistics([0.9, 0.4]).decay == pytest.approx(0.5)
    assert davis.frame_statistics([1.0] * 5 + [0.0] * 5).decay == pytest.approx(1.0)
    with_nan = davis.frame_statistics([np.nan, 1.0, 1.0, 0.0])
    assert (with_nan.mean, with_nan.recall) == (pytest.approx(2 / 3), 0.5)
    with pytest.raises(ValueError):
        davis.frame_statistics([])


def _sequence(num_frames=5, shape=(24, 24)):
    gt = np.zeros((num_frames, *shape), np.uint8)
    gt[:, 2:10, 2:10] = 1
    gt[:, 12:20, 12:22] = 2
    return gt


def test_first_and_last_frames_are_not_scored():
    gt = _sequence()
    pred = gt.copy()
    pred[0], pred[-1] = 0, 2  # wrong, but never scored
    result = davis.evaluate_sequence(gt, pred, sequence="s")
    assert result.num_frames == 5 and len(result.objects) == 2
    for obj in result.objects:
        np.testing.assert_array_equal(obj.j, [1, 1, 1])
        np.testing.assert_array_equal(obj.f, [1, 1, 1])
        assert (obj.j_stats.recall, obj.j_stats.decay) == (1.0, 0.0)
    assert result.jf_mean == 1.0


def test_missing_predicted_object_scores_as_empty():
    gt = _sequence()
    gt[2, 12:20, 12:22] = 0  # object 2 is out of view in frame 2
    pred = np.where(gt == 1, 1, 0).astype(np.uint8)
    result = davis.evaluate_sequence(gt, pred)
    np.testing.assert_array_equal(result.objects[1].j, [0, 1, 0])  # both empty in frame 2
    np.testing.assert_array_equal(result.objects[1].f, [0, 1, 0])
    assert result.objects[1].j_stats.mean == pytest.approx(1 / 3)
    assert result.j_mean == pytest.approx((1 + 1 / 3) / 2)


def test_void_label_is_background_in_sequences():
    gt = _sequence()
    gt[:, 0:2, :] = 255
    assert davis.evaluate_sequence(gt, np.where(gt == 255, 0, gt)).jf_mean == 1.0
    labelled_void = np.where(gt == 255, 1, gt)
    assert davis.evaluate_sequence(gt, labelled_void).objects[0].j_stats.mean < 1.0


def test_object_ids_come_from_the_first_frame():
    gt = _sequence()
    gt[1:, 0:2, 0:2] = 3  # appears only after frame 0: not an object
    pred = np.where(gt == 3, 0, gt)
    assert [o.object_id for o in davis.evaluate_sequence(gt, pred).objects] == [1, 2]
    with pytest.raises(DatasetError, match="id 3"):
        davis.evaluate_sequence(gt, gt, sequence="cows")
    explicit = davis.evaluate_sequence(gt, gt, object_ids=[3, 1])
    assert [o.object_id for o in explicit.objects] == [1, 3]


@pytest.mark.parametrize(
    "gt, pred, match",
    [
        (np.zeros((5, 4, 4), np.uint8), np.zeros((5, 4, 4), np.uint8), "no object"),
        (_sequence(), _sequence(shape=(24, 25)), "one shape"),
        (_sequence(), _sequence().astype(np.float32), "integers"),
        (_sequence(num_frames=2), _sequence(num_frames=2), "3 frames"),
        (_sequence()[0], _sequence()[0], "one shape"),
    ],
)
def test_bad_sequences_raise_dataset_error(gt, pred, match):
    with pytest.raises(DatasetError, match=match) as info:
        davis.evaluate_sequence(gt, pred, sequence="bear")
    assert "bear" in str(info.value)


def test_bad_masks_raise_value_error():
    with pytest.raises(ValueError):
        davis.region_similarity(np.zeros((2, 4, 4), bool), np.zeros((2, 4, 5), bool))
    with pytest.raises(ValueError):
        davis.boundary_f_measure(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    with pytest.raises(ValueError):
        davis.region_similarity(np.zeros((2, 4, 4), bool), np.zeros((2, 4, 4), bool), np.zeros((4, 4), bool))


def test_summary_averages_objects_not_sequences():
    gt = _sequence()
    perfect = davis.evaluate_sequence(gt, gt, sequence="two-objects")
    missed = davis.evaluate_sequence(np.where(gt == 2, 0, gt), np.zeros_like(gt), sequence="one-object")
    summary = davis.summarize([perfect, missed])
    assert summary["J-Mean"] == pytest.approx(2 / 3) and summary["F-Mean"] == pytest.approx(2 / 3)
    assert summary["J&F-Mean"] == pytest.approx(2 / 3)
    assert summary["J-Recall"] == pytest.approx(2 / 3) and summary["J-Decay"] == 0.0
    assert summary["per_sequence"] == [
        {"sequence": "two-objects", "J-Mean": 1.0, "F-Mean": 1.0, "J&F-Mean": 1.0},
        {"sequence": "one-object", "J-Mean": 0.0, "F-Mean": 0.0, "J&F-Mean": 0.0},
    ]
    assert [r["name"] for r in summary["per_object"]] == ["two-objects_1", "two-objects_2", "one-object_1"]
    assert set(davis.GLOBAL_KEYS) <= set(summary)
    with pytest.raises(DatasetError, match="repeat"):
        davis.summarize([perfect, perfect])
    with pytest.raises(DatasetError):
        davis.summarize([])
