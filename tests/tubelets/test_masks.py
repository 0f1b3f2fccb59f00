import numpy as np
import pytest

from tubelets import masks


def _mask(h=12, w=9, box=(2, 3, 6, 8)):
    m = np.zeros((h, w), bool)
    y0, x0, y1, x1 = box
    m[y0:y1, x0:x1] = True
    return m


def test_round_trip_area_and_box():
    m = _mask()
    rle = masks.encode(m)
    assert isinstance(rle["counts"], str) and rle["size"] == [12, 9]
    np.testing.assert_array_equal(masks.decode(rle), m.astype(np.uint8))
    assert masks.area(rle) == 20
    assert masks.bbox(rle) == [3.0, 2.0, 5.0, 4.0]


def test_uncompressed_counts_normalise_to_the_same_mask():
    m = _mask()
    runs, flat, current, length = [], m.flatten(order="F"), 0, 0
    for value in flat:  # column-major run lengths starting with background
        if value != current:
            runs.append(length)
            current, length = value, 0
        length += 1
    runs.append(length)
    uncompressed = {"size": [12, 9], "counts": [int(r) for r in runs]}
    assert masks.normalize(uncompressed) == masks.encode(m)


def test_iou_matrix_and_merge():
    a, b = _mask(box=(0, 0, 4, 4)), _mask(box=(2, 2, 6, 6))
    ra, rb = masks.encode(a), masks.encode(b)
    np.testing.assert_allclose(masks.iou_matrix([ra, rb], [rb]), [[4 / 28], [1.0]])
    assert masks.area(masks.merge([ra, rb])) == 28
    assert masks.area(masks.merge([ra, rb], intersect=True)) == 4
    assert masks.iou_matrix([], [rb]).shape == (0, 1)


def test_empty_mask_and_bad_shape():
    rle = masks.encode(np.zeros((3, 4), bool))
    assert masks.area(rle) == 0 and masks.bbox(rle) == [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="2-D"):
        masks.encode(np.zeros((2, 3, 4), bool))


def test_shift_mask_moves_and_clips():
    mask = np.zeros((4, 5), bool)
    mask[0, 0] = mask[3, 4] = True
    moved = masks.shift_mask(mask, 1, 1)
    assert moved[1, 1] and moved.sum() == 1
    assert not masks.shift_mask(mask, 9, 0).any()


def test_shift_moves_the_mask_and_cuts_off_what_leaves_the_frame():
    mask = np.zeros((6, 8), np.uint8)
    mask[1:3, 5:8] = 1
    moved = masks.decode(masks.shift(masks.encode(mask), 2, 1))
    expected = np.zeros_like(mask)
    expected[2:4, 7:8] = 1
    np.testing.assert_array_equal(moved, expected)
    back = np.zeros_like(mask)
    back[0:2, 0:3] = 1
    np.testing.assert_array_equal(masks.decode(masks.shift(masks.encode(mask), -5, -1)), back)
    assert masks.area(masks.shift(masks.encode(mask), 8, 0)) == 0
