"""Training samples: determinism, the augmentations' effect on the target mask, feature-space augmentation."""

import copy

import numpy as np
import pytest
import torch

from tubelets.config import load_config
from tubelets.models.ipdt import data
from tubelets.models.ipdt.data import FeatureBank, TrackingSamples, augment_levels

AUGMENT = load_config()["train_tracker"]["augment"]


@pytest.fixture(scope="module")
def samples(tiny_shapes_url):
    return TrackingSamples(tiny_shapes_url, AUGMENT, max_gap=3)


def test_a_sample_is_a_pure_function_of_its_seed(samples):
    a, b = samples.sample(11), samples.sample(11)
    assert a.reference_key == b.reference_key and a.target_key == b.target_key
    assert np.array_equal(a.target_mask, b.target_mask) and np.array_equal(a.previous_box, b.previous_box)
    assert a.reference_mask.shape == (48, 64) and a.reference_mask.any()
    assert a.previous_key[0] == a.reference_key[0]
    assert abs(a.previous_key[1] - a.reference_key[1]) < 3


def test_absent_targets_have_empty_masks(tiny_shapes_url):
    augment = {**copy.deepcopy(AUGMENT), "absent": 1.0}
    sample = TrackingSamples(tiny_shapes_url, augment, max_gap=3).sample(3)
    assert not sample.target_mask.any() and sample.occluders == []


def test_occluders_remove_their_pixels_from_the_target_mask():
    rng = np.random.default_rng(0)
    mask = np.zeros((48, 64), bool)
    mask[10:40, 10:50] = True
    augment = {**AUGMENT, "occluders": 3, "occluder_size": [0.4, 0.5]}
    occluders = data.sample_occluders(mask, (1, 0), rng, augment)
    assert occluders
    for occluder in occluders:
        x1, y1, x2, y2 = occluder.box
        sx1, sy1, sx2, sy2 = occluder.source_box
        assert (x2 - x1, y2 - y1) == (sx2 - sx1, sy2 - sy1) and 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 48
    assert data.sample_occluders(np.zeros((48, 64), bool), (1, 0), rng, augment) == []


def test_motion_warps_masks_and_identity_keeps_them():
    mask = np.zeros((48, 64), bool)
    mask[10:20, 10:20] = True
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    assert np.array_equal(data.warp_mask(mask, identity), mask)
    shifted = data.warp_mask(mask, np.array([[1, 0, -0.25], [0, 1, 0]], np.float32))  # content moves right 8 px
    assert shifted[10:20, 18:28].all() and shifted.sum() == 100


def test_perturbed_previous_masks_stay_close():
    rng = np.random.default_rng(0)
    mask = np.zeros((48, 64), bool)
    mask[10:30, 10:30] = True
    noisy = data.perturb_mask(mask, rng, 3)
    iou = (noisy & mask).sum() / (noisy | mask).sum()
    assert 0.4 < iou <= 1.0
    assert np.array_equal(data.perturb_mask(mask, rng, 0), mask)


def test_feature_bank_and_feature_space_augmentation(samples, tiny_detector):
    bank = FeatureBank(tiny_detector, samples.dataset)
    assert len(bank) == sum(video.length for video in samples.dataset.videos)
    batch = [samples.sample(seed) for seed in range(3)]
    p2, p3 = augment_levels(bank, batch, samples.frame_size)
    assert p2.shape == (3, 64, 16, 16) and p3.shape == (3, 64, 8, 8)  # padded to a multiple of 32
    still = copy.deepcopy(batch[0])
    still.motion, still.occluders = np.array([[1, 0, 0], [0, 1, 0]], np.float32), []
    plain, _ = augment_levels(bank, [still], samples.frame_size)
    assert torch.allclose(plain[0], bank.levels([still.target_key])[0][0], atol=1e-5)


def test_frame_warp_on_a_padded_map_moves_the_frame_part_like_the_mask():
    mask = np.zeros((48, 64), bool)
    mask[8:24, 8:24] = True
    theta = np.array([[1, 0, -0.25], [0, 1, 0.1]], np.float32)
    expected = data.warp_mask(mask, theta)
    padded = torch.zeros(1, 1, 64, 64)
    padded[0, 0, :48] = torch.from_numpy(mask.astype(np.float32))
    fraction = torch.tensor([1.0, 48 / 64])
    warped = data.warp_maps(padded, data.frame_theta_to_map(torch.from_numpy(theta)[None], fraction), mode="nearest")
    assert np.array_equal(warped[0, 0, :48].numpy() > 0.5, expected)
