"""Instance level of IPDT: a Siamese region-proposal tracker (SiamRPN++ style) on FPN features.

The reference instance's RoI feature (the *template*, ``[N, C, T, T]``) is
correlated with a *search* crop of the current frame around the instance's
last position (``[N, C, S, S]``, the same cell size). Anchors at each
response cell are the region proposals. Two branches, each with its own
embedding and a depthwise correlation:

* the :class:`Discriminator` classifies every proposal: is it the reference
  instance? (``[N, A, R, R]`` logits, ``R = S - T + 1``);
* the :class:`Correlator` regresses each proposal to the refined box
  (``[N, 4A, R, R]`` deltas, see :func:`geometry.encode_boxes`).

Everything is batched over instances: one call handles every instance of a
frame (or of a training batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from tubelets.models.ipdt import geometry


def conv_block(
    in_channels: int, out_channels: int, kernel: int = 3, padding: int = 0, dilation: int = 1
) -> nn.Sequential:
    """Conv -> GroupNorm -> ReLU (GroupNorm: instance batches are small and uneven)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=padding, dilation=dilation, bias=False),
        nn.GroupNorm(min(8, out_channels), out_channels),
        nn.ReLU(inplace=True),
    )


def depthwise_correlation(search: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Each instance's search map ``[N, C, s, s]`` correlated channel by channel with its template ``[N, C, t, t]``.

    Returns ``[N, C, s - t + 1, s - t + 1]``; one grouped convolution for the whole batch.
    """
    count, channels = template.shape[:2]
    if count == 0:
        size = search.shape[-1] - template.shape[-1] + 1
        return search.new_zeros((0, channels, size, size))
    grouped = search.reshape(1, count * channels, *search.shape[2:])
    kernels = template.reshape(count * channels, 1, *template.shape[2:])
    out = F.conv2d(grouped, kernels, groups=count * channels)
    return out.reshape(count, channels, *out.shape[2:])


class DepthwiseBranch(nn.Module):
    """Embed template and search (separate 3x3 valid convs), correlate, then a 1x1 head to ``outputs`` maps."""

    def __init__(self, in_channels: int, channels: int, outputs: int):
        super().__init__()
        self.embed_template = conv_block(in_channels, channels)
        self.embed_search = conv_block(in_channels, channels)
        self.head = nn.Sequential(conv_block(channels, channels, kernel=1), nn.Conv2d(channels, outputs, 1))

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, T]`` and ``[N, C, S, S]`` -> ``[N, outputs, R, R]``."""
        return self.head(depthwise_correlation(self.embed_search(search), self.embed_template(template)))


class Discriminator(DepthwiseBranch):
    """Per anchor: is this proposal the reference instance? ``[N, A, R, R]`` logits."""

    def __init__(self, in_channels: int, channels: int, anchors: int):
        super().__init__(in_channels, channels, anchors)


class Correlator(DepthwiseBranch):
    """Per anchor: the box deltas to the instance, ``[N, 4A, R, R]``."""

    def __init__(self, in_channels: int, channels: int, anchors: int):
        super().__init__(in_channels, channels, 4 * anchors)


def crop_features(level: torch.Tensor, boxes: torch.Tensor, frame_index: torch.Tensor, size: int,
                  scale: float, stride: int) -> torch.Tensor:
    """RoIAlign ``size x size`` crops of ``boxes`` (frame pixels) from ``level`` ``[B, C, h, w]``.

    ``frame_index[n]`` picks the map of crop ``n``; returns ``[N, C, size, size]``.
    """
    if boxes.shape[0] == 0:
        return level.new_zeros((0, level.shape[1], size, size))
    rois = torch.cat([frame_index[:, None].to(boxes.dtype), boxes], dim=1)
    return roi_align(level, rois, (size, size), spatial_scale=scale / stride, sampling_ratio=2, aligned=True)


def all_proposals(logits: torch.Tensor, deltas: torch.Tensor,
                  anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every anchor's refined box and probability: ``(boxes [N, M, 4], probs [N, M])``, ``M = A * R * R``."""
    count, num_anchors, response = logits.shape[0], logits.shape[1], logits.shape[-1]
    cells = num_anchors * response * response
    per_anchor = deltas.reshape(count, num_anchors, 4, response, response).permute(0, 1, 3, 4, 2)
    boxes = geometry.decode_boxes(anchors.reshape(count, cells, 4), per_anchor.reshape(count, cells, 4))
    return boxes, torch.sigmoid(logits).reshape(count, cells)


def best_proposals(logits: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor,
                   window_influence: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The chosen proposal of each instance: ``(boxes [N, 4], confidence [N])``.

    The choice maximises the discriminator's probability blended with a
    cosine window (SiamRPN's motion prior: large jumps are unlikely); the
    confidence reported is the discriminator's probability of the choice.
    """
    count, response = logits.shape[0], logits.shape[-1]
    boxes, probs = all_proposals(logits, deltas, anchors)
    hann = torch.hann_window(response + 2, periodic=False, device=logits.device)[1:-1]
    window = torch.outer(hann, hann).repeat(logits.shape[1], 1, 1).reshape(-1)  # [M], 1 at each anchor's centre
    best = (probs * (1 - window_influence) + window * window_influence).argmax(1)
    rows = torch.arange(count, device=logits.device)
    return boxes[rows, best], probs[rows, best]
