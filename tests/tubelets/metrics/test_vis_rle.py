"""Bulk RLE decoding against pycocotools."""

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from tubelets.metrics.vis_rle import RleFormatError, decode_rle_strings, pixel_totals


def column_major_runs(mask):
    flat = mask.flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0] + runs if flat[0] else runs


def random_masks(seed, count=200):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        height, width = rng.integers(1, 40, size=2)
        out.append(rng.random((height, width)) < rng.choice([0.0, 0.02, 0.5, 0.98, 1.0]))
    big = np.zeros((1500, 2000), bool)
    big[1:, 1:] = True  # counts far beyond 2**16, positive and negative deltas
    stripes = np.zeros((300, 400), bool)
    stripes[::2] = True
    return out + [big, stripes]


def encode(mask):
    return coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))["counts"]


def test_decoded_counts_equal_the_run_lengths_pycocotools_encoded():
    masks = random_masks(0)
    counts, per_string = decode_rle_strings([encode(m) for m in masks])
    bounds = np.concatenate([[0], np.cumsum(per_string)])
    for i, mask in enumerate(masks):
        assert counts[bounds[i]:bounds[i + 1]].tolist() == column_major_runs(mask), i


def test_pixel_totals_are_height_times_width():
    masks = random_masks(1, count=60)
    assert pixel_totals([encode(m) for m in masks]).tolist() == [m.size for m in masks]
    assert pixel_totals([b"45"]).tolist() == [9]


def test_empty_inputs():
    counts, per_string = decode_rle_strings([])
    assert counts.size == 0 and per_string.size == 0
    assert decode_rle_strings([b""])[1].tolist() == [0]


@pytest.mark.parametrize("bad", [b"0P", b"0 ", b"0" + b"_" * 7 + b"0"])
def test_malformed_strings_raise(bad):
    with pytest.raises(RleFormatError):
        decode_rle_strings([b"52", bad])


def test_totals_without_undoing_the_deltas_match_the_decoded_counts():
    strings = [encode(m) for m in random_masks(2, count=80)] + [b"5@", b"52", b"", b"0"]
    counts, per_string = decode_rle_strings(strings)
    owner = np.repeat(np.arange(len(strings)), per_string)
    assert pixel_totals(strings).tolist() == np.bincount(owner, weights=counts, minlength=len(strings)).tolist()
