"""Box, anchor and mask geometry shared by the IPDT heads, the training data and the tracker.

Coordinates: boxes are ``float32 [N, 4]`` tensors ``x1, y1, x2, y2`` in pixels
of the *frame* (pixel-edge convention: pixel ``i`` spans ``i .. i + 1``). A
pyramid level of stride ``s`` sees frame point ``x`` at ``x * scale / s``,
where ``scale`` is the detector transform's resize factor (transformed size /
frame size; 1.0 for the ``small`` preset on 256x192 frames). Masks at stride 4
("P2 masks") are ``float32 [..., h, w]`` over the *padded* P2 grid.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

P2_STRIDE = 4
P3_STRIDE = 8
# Largest |log| size change one regression step may produce (exp(2) ~ 7x), so a bad delta cannot overflow.
MAX_LOG_SCALE = 2.0


def box_centres_sizes(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``([N, 2] centres, [N, 2] sizes)`` of ``[N, 4]`` boxes; sizes are at least one pixel."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0)
    return centres, sizes


def boxes_from(centres: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """``[N, 4]`` boxes from ``[N, 2]`` centres and sizes."""
    return torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)


def shift_boxes(boxes: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` boxes moved by ``[..., 2]`` (x, y) shifts (a velocity times a number of steps)."""
    return boxes + torch.cat([shifts, shifts], dim=-1)


def scale_boxes(boxes: torch.Tensor, factor: float) -> torch.Tensor:
    """Boxes grown (or shrunk) by ``factor`` about their centres."""
    centres, sizes = box_centres_sizes(boxes)
    return boxes_from(centres, sizes * factor)


def search_boxes(boxes: torch.Tensor, context: float, template_size: int, search_size: int) -> torch.Tensor:
    """The search window around ``boxes``: the template region (box x ``context``) times ``search/template``.

    Template and search crops then share one cell size, so an object of the
    last box's size covers as many cells in both (the SiamRPN convention).
    """
    return scale_boxes(boxes, context * search_size / template_size)


def anchor_grid(last_boxes: torch.Tensor, context: float, template_size: int, search_size: int,
                scales: tuple[float, ...]) -> torch.Tensor:
    """Anchors of the correlation map: ``float32 [N, A, R, R, 4]`` boxes in frame pixels.

    Response cell ``(i, j)`` (``R = search - template + 1``) is the template
    placed ``(i - (R-1)/2, j - (R-1)/2)`` cells from the search centre; anchor
    ``a`` there has the last box's size times ``scales[a]``.
    """
    response = search_size - template_size + 1
    centres, sizes = box_centres_sizes(last_boxes)
    cell = sizes * context / template_size  # [N, 2] pixels per cell (x, y)
    offsets = torch.arange(response, dtype=torch.float32, device=last_boxes.device) - (response - 1) / 2
    grid_y, grid_x = torch.meshgrid(offsets, offsets, indexing="ij")  # [R, R]
    cx = centres[:, 0, None, None] + grid_x * cell[:, 0, None, None]
    cy = centres[:, 1, None, None] + grid_y * cell[:, 1, None, None]
    scale = torch.tensor(scales, dtype=torch.float32, device=last_boxes.device)
    w = sizes[:, 0, None] * scale  # [N, A]
    h = sizes[:, 1, None] * scale
    cx, cy = cx[:, None], cy[:, None]  # [N, 1, R, R]
    w, h = w[:, :, None, None], h[:, :, None, None]
    return torch.stack(torch.broadcast_tensors(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def encode_boxes(anchors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Regression targets ``[..., 4]`` (dx, dy, dw, dh) of ``targets`` relative to ``anchors`` (same shape)."""
    a_xy, a_wh = (anchors[..., :2] + anchors[..., 2:]) / 2, (anchors[..., 2:] - anchors[..., :2]).clamp(min=1.0)
    t_xy, t_wh = (targets[..., :2] + targets[..., 2:]) / 2, (targets[..., 2:] - targets[..., :2]).clamp(min=1.0)
    return torch.cat([(t_xy - a_xy) / a_wh, torch.log(t_wh / a_wh)], dim=-1)


def decode_boxes(anchors: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`; size changes are clamped to ``exp(+-MAX_LOG_SCALE)``."""
    a_xy, a_wh = (anchors[..., :2] + anchors[..., 2:]) / 2, (anchors[..., 2:] - anchors[..., :2]).clamp(min=1.0)
    xy = a_xy + deltas[..., :2] * a_wh
    wh = a_wh * torch.exp(deltas[..., 2:].clamp(-MAX_LOG_SCALE, MAX_LOG_SCALE))
    return torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)


def pairwise_box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes ``[..., 4]`` and ``[..., 4]`` broadcast elementwise (not a matrix)."""
    top_left = torch.maximum(boxes_a[..., :2], boxes_b[..., :2])
    bottom_right = torch.minimum(boxes_a[..., 2:], boxes_b[..., 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area_a = (boxes_a[..., 2:] - boxes_a[..., :2]).clamp(min=0).prod(-1)
    area_b = (boxes_b[..., 2:] - boxes_b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter).clamp(min=1e-6)


def clip_boxes(boxes: torch.Tensor, height: int, width: int, min_size: float = 2.0) -> torch.Tensor:
    """Boxes clipped to the frame and at least ``min_size`` pixels wide and high."""
    x1 = boxes[:, 0].clamp(0, width - min_size)
    y1 = boxes[:, 1].clamp(0, height - min_size)
    x2 = torch.maximum(boxes[:, 2].clamp(max=width), x1 + min_size)
    y2 = torch.maximum(boxes[:, 3].clamp(max=height), y1 + min_size)
    return torch.stack([x1, y1, x2, y2], dim=1)


def masks_to_p2(masks: torch.Tensor, scale: float, p2_size: tuple[int, int]) -> torch.Tensor:
    """Frame masks ``[N, H, W]`` (any dtype) as P2 coverage ``float32 [N, h, w]`` in ``[0, 1]``.

    The mask is resized as the detector resizes the frame, padded bottom/right
    like the detector's batch, then area-averaged over each 4x4 cell.
    """
    count = masks.shape[0]
    height, width = p2_size
    if count == 0:
        return torch.zeros((0, height, width))
    resized = masks[:, None].float()
    if scale != 1.0:
        size = (round(masks.shape[1] * scale), round(masks.shape[2] * scale))
        resized = F.interpolate(resized, size=size, mode="bilinear", align_corners=False)
    padded = torch.zeros((count, 1, height * P2_STRIDE, width * P2_STRIDE), device=masks.device)
    h, w = min(resized.shape[2], padded.shape[2]), min(resized.shape[3], padded.shape[3])
    padded[:, :, :h, :w] = resized[:, :, :h, :w]
    return F.avg_pool2d(padded, P2_STRIDE)[:, 0]


def p2_to_frame(maps: torch.Tensor, scale: float, frame_size: tuple[int, int]) -> torch.Tensor:
    """P2 maps ``[N, h, w]`` (logits or probabilities) bilinearly upsampled to frame pixels ``[N, H, W]``."""
    height, width = frame_size
    if maps.shape[0] == 0:
        return maps.new_zeros((0, height, width))
    factor = P2_STRIDE / scale
    size = (math.ceil(maps.shape[1] * factor), math.ceil(maps.shape[2] * factor))
    upsampled = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return upsampled[:, :height, :width]


def box_masks(boxes: torch.Tensor, frame_size: tuple[int, int]) -> torch.Tensor:
    """``bool [N, H, W]``: 1 inside each box (pixels whose centre lies in it)."""
    inside_y, inside_x = _inside_rows_columns(boxes, frame_size)
    return inside_y[:, :, None] & inside_x[:, None, :]


def cut_to_boxes(masks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``masks`` (``bool [N, H, W]``) cleared outside each box, in place: ``masks & box_masks(boxes, (H, W))``.

    A box's pixels are a block of rows by a block of columns, so clearing the rest by slices costs
    a pass over the cleared pixels instead of building and applying ``N`` full-frame box masks.
    """
    inside_y, inside_x = _inside_rows_columns(boxes, tuple(masks.shape[-2:]))
    for n in range(masks.shape[0]):
        rows, columns = _span(inside_y[n]), _span(inside_x[n])
        if rows is None or columns is None:
            masks[n] = False
            continue
        masks[n, : rows.start], masks[n, rows.stop :] = False, False
        masks[n, rows, : columns.start], masks[n, rows, columns.stop :] = False, False
    return masks


def _inside_rows_columns(boxes: torch.Tensor, frame_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``bool [N, H]`` and ``[N, W]``: the rows and the columns whose pixel centres lie in each box."""
    height, width = frame_size
    ys = torch.arange(height, dtype=torch.float32, device=boxes.device) + 0.5
    xs = torch.arange(width, dtype=torch.float32, device=boxes.device) + 0.5
    inside_y = (ys[None] >= boxes[:, 1, None]) & (ys[None] <= boxes[:, 3, None])
    inside_x = (xs[None] >= boxes[:, 0, None]) & (xs[None] <= boxes[:, 2, None])
    return inside_y, inside_x


def _span(flags: torch.Tensor) -> slice | None:
    """From the first to the last set entry of ``bool [L]`` ``flags``; None when none is set."""
    indices = torch.nonzero(flags).flatten()
    return slice(int(indices[0]), int(indices[-1]) + 1) if indices.numel() else None


def mask_boxes(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tight boxes ``[N, 4]`` (pixel edges) of boolean masks ``[N, H, W]`` and which masks are non-empty, both on
    the CPU (the masks may be on any device)."""
    count = masks.shape[0]
    boxes = torch.zeros((count, 4))
    present = masks.flatten(1).any(1).cpu() if count else torch.zeros(0, dtype=torch.bool)
    for index in torch.nonzero(present).flatten().tolist():
        ys, xs = torch.nonzero(masks[index], as_tuple=True)
        edges = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).tolist()  # one copy from the device
        boxes[index] = torch.tensor(edges, dtype=torch.float32)
    return boxes, present


def warp_masks(masks: torch.Tensor | Sequence[torch.Tensor], old_boxes: torch.Tensor, new_boxes: torch.Tensor,
               stride: float) -> torch.Tensor:
    """Move and rescale masks (``[N, h, w]``, or ``N`` masks ``[h, w]``, on a grid of ``stride`` frame pixels)
    from old to new boxes; returns ``float32 [N, h, w]``."""
    count = len(masks)
    if count == 0:
        return torch.as_tensor(masks, dtype=torch.float32)
    height, width = masks[0].shape
    device = masks[0].device
    old_boxes, new_boxes = old_boxes.to(device), new_boxes.to(device)  # the warp runs where the masks are
    old_c, old_s = box_centres_sizes(old_boxes / stride)
    new_c, new_s = box_centres_sizes(new_boxes / stride)
    ratio = old_s / new_s  # input units per output unit
    extent = torch.tensor([width, height], dtype=torch.float32, device=device)
    # Normalised input coordinate = ratio * normalised output + shift (align_corners=False convention).
    shift = 2 * (old_c - new_c * ratio) / extent + ratio - 1
    # The warp is a scale and shift per axis, so the sampling grid is an outer sum of two coordinate rows
    # (affine_grid would build a full [N, H, W, 2] grid, most of the step's cost on large frames).
    columns = _pixel_centres(width, device) * ratio[:, :1] + shift[:, :1]  # [N, W]
    rows = _pixel_centres(height, device) * ratio[:, 1:] + shift[:, 1:]  # [N, H] (x and y sample alike)
    warped = torch.zeros((count, height, width), device=device)
    for n in range(count):
        mask = masks[n].float()
        # Only output pixels that sample within a pixel of the mask's support can be nonzero: sample those
        # alone (each output pixel is computed on its own, so they get the values a full warp gives them).
        ys, xs = _reach(rows[n], mask.any(dim=1), height), _reach(columns[n], mask.any(dim=0), width)
        if ys is None or xs is None:
            continue
        grid = torch.stack([columns[n, xs][None, :].expand(ys.stop - ys.start, -1),
                            rows[n, ys][:, None].expand(-1, xs.stop - xs.start)], dim=-1)
        warped[n, ys, xs] = F.grid_sample(mask[None, None], grid[None], mode="bilinear", align_corners=False)[0, 0]
    return warped


def _reach(coordinates: torch.Tensor, occupied: torch.Tensor, size: int) -> slice | None:
    """The output pixels whose normalised sample ``coordinates`` fall within 1.5 input pixels of an ``occupied``
    one, as a slice (``coordinates`` grow along the axis); None when nothing is occupied or reached."""
    filled = _span(occupied)
    if filled is None:
        return None
    source = ((coordinates + 1) * size - 1) / 2  # grid_sample's pixel coordinates (align_corners=False)
    last = filled.stop - 1
    return _span((source > filled.start - 1.5) & (source < last + 1.5))


def _pixel_centres(size: int, device: torch.device) -> torch.Tensor:
    """``[size]`` normalised coordinates of the pixel centres, taken from ``affine_grid`` on a one-pixel-wide
    grid so that the warp is the one ``affine_grid`` gives to the last bit."""
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], device=device)
    return F.affine_grid(identity, [1, 1, 1, size], align_corners=False)[0, 0, :, 0]
