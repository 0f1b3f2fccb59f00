"""Geometry helpers: frame <-> P2 masks, box masks, tight boxes, mask warping."""

import torch

from tubelets.models.ipdt import geometry


def test_masks_to_p2_area_averages_each_cell_and_pads_like_the_detector():
    masks = torch.zeros(1, 8, 12)
    masks[0, 0:4, 0:4] = 1
    masks[0, 4:6, 4:8] = 1  # half of one cell
    coverage = geometry.masks_to_p2(masks, scale=1.0, p2_size=(3, 4))  # padded grid one row/col larger
    assert coverage.shape == (1, 3, 4)
    assert coverage[0, 0, 0] == 1.0 and coverage[0, 1, 1] == 0.5 and coverage[0, 2].sum() == 0
    assert geometry.masks_to_p2(masks[:0], 1.0, (3, 4)).shape == (0, 3, 4)


def test_p2_to_frame_inverts_masks_to_p2_on_whole_cells():
    masks = torch.zeros(2, 16, 20)
    masks[0, 4:12, 8:16] = 1
    coverage = geometry.masks_to_p2(masks, 1.0, (4, 5))
    back = geometry.p2_to_frame(coverage, 1.0, (16, 20)) > 0.5
    assert back.shape == (2, 16, 20)
    assert (back == masks.bool()).float().mean() > 0.9
    assert not back[1].any()


def test_box_masks_and_mask_boxes_agree():
    boxes = torch.tensor([[2.0, 1.0, 6.0, 4.0]])
    inside = geometry.box_masks(boxes, (8, 8))
    assert inside.sum() == 12 and inside[0, 1, 2] and not inside[0, 4, 2]
    tight, present = geometry.mask_boxes(torch.cat([inside, torch.zeros_like(inside)]))
    assert torch.equal(tight[0], boxes[0]) and present.tolist() == [True, False]


def test_warp_masks_moves_a_mask_with_its_box():
    masks = torch.zeros(1, 20, 20)
    masks[0, 2:6, 2:6] = 1
    old, new = torch.tensor([[2.0, 2.0, 6.0, 6.0]]), torch.tensor([[10.0, 8.0, 18.0, 16.0]])
    warped = geometry.warp_masks(masks, old, new, stride=1.0) > 0.5
    assert warped[0, 9:15, 11:17].all() and warped.sum() < 70 and not warped[0, :6, :6].any()
    assert torch.equal(geometry.warp_masks(masks, old, old, stride=1.0) > 0.5, masks.bool())


def test_clip_boxes_keeps_boxes_inside_and_not_degenerate():
    clipped = geometry.clip_boxes(torch.tensor([[-5.0, -5.0, 3.0, 100.0], [70.0, 10.0, 90.0, 12.0]]), 48, 64)
    assert clipped[0].tolist() == [0.0, 0.0, 3.0, 48.0]
    assert clipped[1, 0] <= 62 and clipped[1, 2] - clipped[1, 0] >= 2


def affine_grid_warp(masks: torch.Tensor, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """The warp as ``affine_grid`` + ``grid_sample`` over whole frames compute it (the reference)."""
    count, height, width = masks.shape
    old_c, old_s = geometry.box_centres_sizes(old)
    new_c, new_s = geometry.box_centres_sizes(new)
    ratio = old_s / new_s
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = ratio[:, 0], ratio[:, 1]
    theta[:, :, 2] = 2 * (old_c - new_c * ratio) / torch.tensor([float(width), float(height)]) + ratio - 1
    grid = torch.nn.functional.affine_grid(theta, [count, 1, height, width], align_corners=False)
    return torch.nn.functional.grid_sample(masks[:, None], grid, align_corners=False)[:, 0]


def random_boxes(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    corners = torch.rand(count, 2, generator=generator) * 30
    old = torch.cat([corners, corners + 5 + torch.rand(count, 2, generator=generator) * 20], dim=1)
    return old, old + torch.randn(count, 4, generator=generator) * 4


def test_warp_masks_samples_exactly_where_affine_grid_would():
    """The separable grid, sampled only near each mask, must give the full affine grid's warp to the
    last bit (the tracker's outputs did not change when it replaced it)."""
    generator = torch.Generator().manual_seed(0)
    dense = (torch.rand(6, 37, 53, generator=generator) > 0.5).float()
    old, new = random_boxes(6, generator)
    assert torch.equal(geometry.warp_masks(dense, old, new, stride=1.0), affine_grid_warp(dense, old, new))
    sparse = torch.zeros(6, 37, 53)
    sparse[0, 3:9, 40:50] = 1.0  # near the right edge
    sparse[1, 30:37, 0:4] = 1.0  # in a corner
    sparse[2, 10:20, 10:30] = torch.rand(10, 20, generator=generator)  # soft values
    sparse[3, 18, 26] = 1.0  # one pixel
    # sparse[4]: empty; sparse[5]: moved out of the frame
    old, new = random_boxes(6, generator)
    new[5] = torch.tensor([80.0, 80.0, 90.0, 90.0])
    sparse[5, 5:10, 5:10] = 1.0
    warped = geometry.warp_masks(list(sparse), old, new, stride=1.0)  # a list of masks, as the tracker passes
    assert torch.equal(warped, affine_grid_warp(sparse, old, new))
    assert warped[0].any() and not warped[4].any() and not warped[5].any()


def test_cut_to_boxes_is_the_and_with_box_masks():
    generator = torch.Generator().manual_seed(2)
    masks = torch.rand(5, 23, 31, generator=generator) > 0.3
    boxes = torch.tensor([[2.2, 3.5, 17.9, 12.5], [-4.0, -2.0, 40.0, 30.0], [10.0, 10.0, 10.2, 10.3],
                          [28.5, 1.0, 35.0, 8.0], [5.0, 20.4, 9.0, 22.6]])
    expected = masks & geometry.box_masks(boxes, (23, 31))
    cut = geometry.cut_to_boxes(masks.clone(), boxes)
    assert torch.equal(cut, expected) and not cut[2].any() and torch.equal(cut[1], masks[1])
