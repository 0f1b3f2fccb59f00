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


def test_hidden_targets_keep_the_instances_frame_and_lose_its_mask_under_one_patch(tiny_shapes_url):
    augment = {**copy.deepcopy(AUGMENT), "hidden": 1.0, "absent": 0.0, "shift": 0.0, "scale": [1.0, 1.0]}
    hidden = TrackingSamples(tiny_shapes_url, augment, max_gap=3)
    for seed in range(5):
        sample = hidden.sample(seed)
        video, frame = sample.target_key
        visible = hidden._mask(video, _track_of(hidden, sample.reference_key, sample.reference_mask), frame)
        assert sample.target_key[0] == sample.reference_key[0] and not sample.target_mask.any()
        if visible.any():
            [patch] = sample.occluders
            x1, y1, x2, y2 = patch.box
            bx1, by1, bx2, by2 = data.tight_box(visible)
            assert x1 <= bx1 and y1 <= by1 and bx2 <= x2 and by2 <= y2


def test_other_boxes_are_the_other_visible_instances_and_none_when_absent(samples, tiny_shapes_url):
    no_motion = {**copy.deepcopy(AUGMENT), "shift": 0.0, "scale": [1.0, 1.0], "occluders": 0, "absent": 0.0}
    plain = TrackingSamples(tiny_shapes_url, no_motion, max_gap=3)
    seen = 0
    for seed in range(20):
        sample = plain.sample(seed)
        anchor_track = _track_of(plain, sample.reference_key, sample.reference_mask)
        video, frame = sample.target_key
        expected = [data.tight_box(m) for t, m in enumerate(_visible_masks(plain, video, frame))
                    if t != anchor_track and m.any()]
        assert sorted(map(tuple, sample.other_boxes.tolist())) == sorted(tuple(b.tolist()) for b in expected)
        seen += len(expected)
    assert seen > 0
    absent = TrackingSamples(tiny_shapes_url, {**no_motion, "absent": 1.0}, max_gap=3)
    assert absent.sample(3).other_boxes.shape == (0, 4)


def test_a_distractor_sample_centres_the_search_on_another_instance(tiny_shapes_url):
    drifted = TrackingSamples(tiny_shapes_url, {**copy.deepcopy(AUGMENT), "distractor": 1.0, "mask_noise": 0,
                                                "previous_jitter": 0.0}, max_gap=3)
    moved = 0
    for seed in range(20):
        sample = drifted.sample(seed)
        own = _track_of(drifted, sample.reference_key, sample.reference_mask)
        video, frame = sample.previous_key
        others = [m for t, m in enumerate(_visible_masks(drifted, video, frame)) if t != own and m.any()]
        if others:  # with another instance in view, the previous mask and box are one of them
            assert any(np.array_equal(sample.previous_mask, m) for m in others)
            assert any(np.allclose(sample.previous_box, data.tight_box(m)) for m in others)
            moved += 1
    assert moved > 0


def _visible_masks(samples, video, frame):
    """Every track's mask in ``frame`` (empty when it is not visible), in track order."""
    masks = [samples._mask(video, t, frame) for t in range(len(samples._masks[video]))]
    return [m if m.sum() >= data.MIN_VISIBLE_PIXELS else np.zeros_like(m) for m in masks]


def _track_of(samples, key, mask):
    video, frame = key
    return next(t for t in range(len(samples._masks[video])) if np.array_equal(samples._mask(video, t, frame), mask))


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
