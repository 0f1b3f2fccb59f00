import pytest
import torch

from tubelets.models.augment import MIN_INSTANCE_PIXELS, augment_sample, make_target

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OFF = {"hflip": 0.0, "scale": [1.0, 1.0], "color": 0.0}
ALL = {"hflip": 0.5, "scale": [0.7, 1.3], "color": 0.3}


def sample():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    masks = torch.zeros(2, 48, 64, dtype=torch.uint8)
    masks[0, 5:20, 10:30] = 1
    masks[1, 30:40, 50:60] = 1
    return image, masks, torch.tensor([1, 4])


def test_make_target_boxes_are_pixel_edges():
    _, masks, labels = sample()
    target = make_target(masks, labels)
    assert target["boxes"].tolist() == [[10.0, 5.0, 30.0, 20.0], [50.0, 30.0, 60.0, 40.0]]
    assert target["labels"].tolist() == [1, 4] and target["masks"].dtype == torch.uint8


def test_make_target_drops_tiny_and_handles_none():
    masks = torch.zeros(2, 8, 8, dtype=torch.uint8)
    masks[0, 0, : MIN_INSTANCE_PIXELS - 1] = 1
    masks[1, :2, :] = 1
    target = make_target(masks, torch.tensor([3, 5]))
    assert target["labels"].tolist() == [5]
    empty = make_target(masks[:0], torch.zeros(0, dtype=torch.int64))
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 8, 8)


def test_no_augmentation_is_the_identity():
    image, masks, labels = sample()
    out, target = augment_sample(image, masks, labels, OFF, seed=3)
    assert torch.equal(out, image.float() / 255)
    assert torch.equal(target["masks"], masks)


def test_same_seed_same_result_other_seed_differs():
    image, masks, labels = sample()
    first = augment_sample(image, masks, labels, ALL, seed=11)
    again = augment_sample(image, masks, labels, ALL, seed=11)
    other = augment_sample(image, masks, labels, ALL, seed=12)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1]["boxes"], again[1]["boxes"])
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("seed", range(6))
def test_augmented_sample_keeps_size_and_tight_boxes(seed):
    image, masks, labels = sample()
    out, target = augment_sample(image, masks, labels, ALL, seed=seed)
    assert out.shape == (3, 48, 64) and 0 <= out.min() and out.max() <= 1
    assert target["masks"].shape[1:] == (48, 64)
    assert torch.equal(make_target(target["masks"], target["labels"])["boxes"], target["boxes"])


def test_flip_mirrors_the_boxes():
    image, masks, labels = sample()
    _, target = augment_sample(image, masks, labels, {**OFF, "hflip": 1.0}, seed=0)
    assert target["boxes"][0].tolist() == [64 - 30, 5, 64 - 10, 20]


def test_frame_without_instances_survives_every_augmentation():
    image, masks, _ = sample()
    out, target = augment_sample(image, masks[:0], torch.zeros(0, dtype=torch.int64), ALL, seed=5)
    assert out.shape == (3, 48, 64) and target["boxes"].shape == (0, 4)
