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


def test_warp_masks_samples_exactly_where_affine_grid_would():
    """The separable grid must give the full affine grid's warp to the last bit (the tracker's outputs
    did not change when it replaced it)."""
    torch.manual_seed(0)
    masks = (torch.rand(6, 37, 53) > 0.5).float()
    corners = torch.rand(6, 2) * 30
    old = torch.cat([corners, corners + 5 + torch.rand(6, 2) * 20], dim=1)
    new = old + torch.randn(6, 4) * 4
    old_c, old_s = geometry.box_centres_sizes(old)
    new_c, new_s = geometry.box_centres_sizes(new)
    ratio = old_s / new_s
    theta = torch.zeros(6, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = ratio[:, 0], ratio[:, 1]
    theta[:, :, 2] = 2 * (old_c - new_c * ratio) / torch.tensor([53.0, 37.0]) + ratio - 1
    grid = torch.nn.functional.affine_grid(theta, [6, 1, 37, 53], align_corners=False)
    expected = torch.nn.functional.grid_sample(masks[:, None], grid, align_corners=False)[:, 0]
    assert torch.equal(geometry.warp_masks(masks, old, new, stride=1.0), expected)

