"""The one-object-per-pixel rule and growing masks from clicks (tubelets.models.ipdt.point).

The mechanics run on the tiny untrained heads of this folder's conftest; how
well a click grows into its object needs the shipped checkpoints.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tubelets.models.checkpoints import builtin_checkpoints
from tubelets.models.ipdt.features import FeatureWindow
from tubelets.models.ipdt.point import component_at, exclusive_masks, grow_from_points, seed_regions

HEIGHT, WIDTH = 48, 64  # the tiny detector's frame size (conftest)


def noise_frame(squares: list[tuple[int, int]], seed: int = 0) -> np.ndarray:
    """``uint8 [48, 64, 3]`` noise with bright 12-pixel squares at ``(x, y)``."""
    frame = np.random.default_rng(seed).integers(0, 60, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for x, y in squares:
        frame[y : y + 12, x : x + 12] = (230, 200, 40)
    return frame


def encoding_of(detector, model, frame):
    return FeatureWindow(detector, model, lambda _: frame, 2)[0]


def test_exclusive_masks_give_each_pixel_to_the_most_probable_object_above_the_threshold():
    probs = torch.tensor([[[0.9, 0.6, 0.2, 0.7]],
                          [[0.8, 0.7, 0.3, 0.7]]])
    masks = exclusive_masks(probs, 0.5)
    assert masks[0].tolist() == [[True, False, False, True]]  # a tie goes to the lower row
    assert masks[1].tolist() == [[False, True, False, False]]


def test_fixed_masks_are_kept_exactly_and_take_their_pixels_from_the_others():
    probs = torch.tensor([[[0.9, 0.9, 0.9]], [[0.1, 0.0, 0.2]]])
    fixed = torch.tensor([[False, True, True]])
    masks = exclusive_masks(probs, 0.5, {1: fixed[0]})
    assert masks[0].tolist() == [[True, False, False]]
    assert masks[1].tolist() == [[False, True, True]]
    assert exclusive_masks(torch.zeros(0, 2, 3), 0.5).shape == (0, 2, 3)


def test_component_at_keeps_the_8_connected_part_under_the_pixel():
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[1, 1] = mask[4, 4] = True
    assert component_at(mask, 0, 0).sum() == 2  # diagonal neighbours connect
    assert not component_at(mask, 2, 2).any()


def test_seed_regions_hold_the_click_cell_and_its_neighbours_on_the_visible_grid(tiny_detector, tiny_model):
    encoding = encoding_of(tiny_detector, tiny_model, noise_frame([(10, 10)]))
    regions = seed_regions(encoding, [(0, 0), (47, 63)], point_threshold=0.0)
    assert regions.shape == (2, *encoding.p2_size)
    assert regions[0, :2, :2].eq(1).all() and regions[0].sum() == 4  # clipped at the corner
    assert regions[1, 10:12, 14:16].eq(1).all() and regions[1].sum() == 4


def test_clicks_of_one_frame_grow_into_disjoint_masks_that_hold_their_clicks(tiny_detector, tiny_model):
    encoding = encoding_of(tiny_detector, tiny_model, noise_frame([(10, 10), (20, 12)]))
    taken = np.zeros((HEIGHT, WIDTH), bool)
    taken[30:, :] = True
    points = [(15.5, 15.5), (23.0, 16.0), (40.2, 5.7)]
    # mask_threshold 0: the untrained head gives every pixel some probability, so the masks would overlap.
    grown = grow_from_points(tiny_model, encoding, points, 0.5, 0.0, taken)
    assert len(grown) == 3 and all(g.shape == (HEIGHT, WIDTH) and g.dtype == bool for g in grown)
    assert sum(g.astype(int) for g in grown).max() == 1
    assert not any((g & taken).any() for g in grown)
    for (x, y), mask in zip(points, grown):
        assert mask[int(y), int(x)] and (component_at(mask, int(y), int(x)) == mask).all()


def test_a_click_is_never_an_empty_mask(tiny_detector, tiny_model):
    encoding = encoding_of(tiny_detector, tiny_model, noise_frame([]))
    # threshold 1: nothing the head says passes, so the click's pixel at least stands in.
    grown = grow_from_points(tiny_model, encoding, [(0.0, 0.0), (63.9, 47.9)], 0.5, 1.0)
    assert [g.sum() for g in grown] == [1, 1] and grown[0][0, 0] and grown[1][47, 63]
    assert grow_from_points(tiny_model, encoding, [], 0.5, 0.5) == []


@pytest.mark.parametrize("points, taken, message", [
    ([(64.0, 3.0)], None, "outside"),
    ([(-0.5, 3.0)], None, "outside"),
    ([(float("nan"), 3.0)], None, "outside"),
    ([(3.2, 3.2), (3.7, 3.9)], None, "same pixel"),
    ([(3.0, 3.0)], np.ones((HEIGHT, WIDTH), bool), "another object"),
])
def test_bad_clicks_are_refused(tiny_detector, tiny_model, points, taken, message):
    encoding = encoding_of(tiny_detector, tiny_model, noise_frame([]))
    with pytest.raises(ValueError, match=message):
        grow_from_points(tiny_model, encoding, points, 0.5, 0.5, taken)


# ---- the shipped checkpoints ----

needs_checkpoints = pytest.mark.skipif(
    not {"tracker-vos-small", "detector-small"} <= set(builtin_checkpoints()),
    reason="needs the shipped models/checkpoints/tracker-vos-small.pt and detector-small.pt",
)


@pytest.fixture(scope="module")
def shipped():
    from tubelets.models.ipdt.checkpoint import load_tracking_models

    detector, model, _ = load_tracking_models("builtin:tracker-small", None, "cpu")
    return detector, model


def centre_click(mask: np.ndarray) -> tuple[float, float]:
    """The pixel farthest inside ``mask`` (the usual first click of interactive segmentation), as ``(x, y)``."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return float(x) + 0.5, float(y) + 0.5


@needs_checkpoints
def test_shipped_heads_grow_clicks_into_the_clicked_objects(shipped):
    from tubelets.synth.scene import generate_video

    video = generate_video(np.random.default_rng(5), 256, 192, False)
    truths = [i.masks[0] for i in video.instances if i.masks[0] is not None and i.masks[0].sum() >= 400]
    encoding = encoding_of(*shipped, video.frames[0])
    points = [centre_click(m) for m in truths]
    grown = grow_from_points(shipped[1], encoding, points, 0.5, 0.5)
    ious = [(g & t).sum() / (g | t).sum() for g, t in zip(grown, truths)]
    assert all(g[int(y), int(x)] for g, (x, y) in zip(grown, points))
    # Measured 0.90 and 0.84 with tracker-small (the 3x3-cell seeds alone: under 0.1).
    assert len(truths) == 2 and min(ious) > 0.75
