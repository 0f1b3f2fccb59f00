"""Pixel level of IPDT (FEELVOS style): pixel embeddings, global and local matching, a dynamic head.

All maps live on the P2 grid (stride 4). Distances between embeddings are
FEELVOS's ``d(p, q) = 1 - 2 / (1 + exp(||e_p - e_q||^2))`` in ``[0, 1)``.

* :func:`global_matching`: per instance, each current pixel's distance to the
  nearest pixel of the *reference* instance (the proposal it started from);
* :func:`local_matching`: per instance, the distance to the nearest pixel of
  the instance's *previous-frame* mask within ``radius`` cells;
* :class:`DynamicSegmentationHead`: the two matching maps and the previous
  mask, with the frame's backbone features, to the instance's mask logits.

The work that does not depend on the instance (the embedding, the distance
volume between two frames, the head's conv over backbone features) runs once
per frame; only small per-instance maps are batched over instances.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tubelets.models.ipdt.siamese import conv_block


def feelvos_distance(squared: torch.Tensor) -> torch.Tensor:
    """FEELVOS's distance from squared Euclidean distances; 0 for identical embeddings, -> 1 far apart."""
    return 1 - 2 / (1 + torch.exp(squared.clamp(max=30.0)))


class PixelEmbedding(nn.Module):
    """P2 features ``[B, C, h, w]`` -> pixel embeddings ``[B, D, h, w]``."""

    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        hidden = max(dim, in_channels // 2)
        # A 1x1 reduction first keeps the 3x3 context conv cheap (it runs on every frame).
        self.body = nn.Sequential(conv_block(in_channels, hidden, kernel=1), nn.Conv2d(hidden, dim, 3, padding=1))

    def forward(self, p2: torch.Tensor) -> torch.Tensor:
        return self.body(p2)


def reference_vectors(embedding: torch.Tensor, masks: torch.Tensor, limit: int,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The embeddings under each reference mask, padded: ``([N, K, D] vectors, bool [N, K] valid)``.

    ``embedding`` ``[N, D, h, w]`` (instance ``n``'s reference frame), ``masks``
    ``[N, h, w]`` P2 coverage; a cell counts when more than half covered (the
    best-covered cell for a tiny mask). At most ``limit`` cells are kept per
    instance (an even subsample), so the cost is bounded for large objects.
    """
    count, dim = embedding.shape[:2]
    flat_masks = masks.reshape(count, -1)
    flat = embedding.reshape(count, dim, -1).transpose(1, 2)  # [N, hw, D]
    chosen = []
    for n in range(count):
        cells = torch.nonzero(flat_masks[n] > 0.5).flatten()
        if cells.numel() == 0:
            cells = flat_masks[n].argmax().reshape(1)
        if cells.numel() > limit:
            cells = cells[torch.linspace(0, cells.numel() - 1, limit).round().long()]
        chosen.append(cells)
    size = max([len(c) for c in chosen], default=1)
    vectors = embedding.new_zeros((count, size, dim))
    valid = torch.zeros((count, size), dtype=torch.bool, device=embedding.device)
    for n, cells in enumerate(chosen):
        vectors[n, : len(cells)] = flat[n, cells]
        valid[n, : len(cells)] = True
    return vectors, valid


def global_matching(embedding: torch.Tensor, vectors: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``[N, h, w]``: distance of each pixel of ``embedding`` to its instance's nearest reference vector.

    ``embedding`` is ``[N, D, h, w]`` (instance ``n``'s current frame) or
    ``[1, D, h, w]``, one frame shared by every instance: then all instances
    are matched with one matrix product. ``vectors``, ``valid`` as returned
    by :func:`reference_vectors`.
    """
    count, size = vectors.shape[:2]
    frames, dim, height, width = embedding.shape
    if count == 0:
        return embedding.new_zeros((0, height, width))
    pixels = embedding.reshape(frames, dim, -1).transpose(1, 2)  # [F, hw, D]
    # min_v ||p - v||^2 = ||p||^2 + min_v (||v||^2 - 2 p.v): one fused product per call, then one min.
    # Invalid (padding) vectors get an infinite norm.
    vector_norms = vectors.pow(2).sum(-1).masked_fill(~valid, float("inf"))  # [N, K]
    if frames == 1:
        scores = torch.addmm(vector_norms.reshape(1, -1), pixels[0], vectors.reshape(-1, dim).T, alpha=-2)
        nearest = scores.reshape(-1, count, size).amin(dim=2).T  # [N, hw]
    else:
        nearest = torch.baddbmm(vector_norms[:, None, :], pixels, vectors.transpose(1, 2), alpha=-2).amin(dim=2)
    squared = (pixels.pow(2).sum(-1) + nearest).clamp(min=0)
    return feelvos_distance(squared).reshape(count, height, width)


def local_distances(current: torch.Tensor, previous: torch.Tensor, radius: int) -> torch.Tensor:
    """Squared distances from each current pixel to each previous pixel within ``radius``: ``[P, K*K, h*w]``.

    ``current``, ``previous``: ``[P, D, h, w]`` embeddings of ``P`` frame pairs;
    ``K = 2 * radius + 1``, offsets in row-major order (as ``F.unfold``).
    Offsets outside the map get ``inf``. Computed as ``||c||^2 + ||p||^2 - 2 c.p``
    one offset at a time over views of the padded previous map, so no
    ``[P, D, K*K, h*w]`` neighbour volume is ever materialised.
    """
    pairs, dim, height, width = current.shape
    kernel = 2 * radius + 1
    padded = F.pad(previous, (radius,) * 4)
    dots = torch.stack(
        [
            (current * padded[:, :, dy : dy + height, dx : dx + width]).sum(1)
            for dy in range(kernel)
            for dx in range(kernel)
        ],
        dim=1,
    ).reshape(pairs, kernel * kernel, height * width)
    neighbour_norms = F.unfold(previous.pow(2).sum(1, keepdim=True), kernel, padding=radius)  # [P, K*K, hw]
    inside = F.unfold(torch.ones_like(previous[:, :1]), kernel, padding=radius) > 0  # [P, K*K, hw]
    current_norms = current.pow(2).sum(1).reshape(pairs, 1, height * width)
    squared = (neighbour_norms + current_norms - 2 * dots).clamp(min=0)
    return squared.masked_fill(~inside, float("inf"))


def local_matching(distances: torch.Tensor, pair_index: torch.Tensor, previous_masks: torch.Tensor,
                   radius: int) -> torch.Tensor:
    """``[N, h, w]``: per instance, the distance to the nearest previous-mask pixel within ``radius`` (1 if none).

    ``distances`` from :func:`local_distances`; ``pair_index[n]`` is instance
    ``n``'s frame pair; ``previous_masks`` ``[N, h, w]`` P2 coverage (> 0.5 counts).
    """
    count, height, width = previous_masks.shape
    if count == 0:
        return previous_masks.new_zeros((0, height, width))
    kernel = 2 * radius + 1
    in_mask = F.pad(previous_masks > 0.5, (radius,) * 4)  # in_mask[:, y + dy, x + dx]: (y, x) + offset (dy, dx)
    pair_distances = distances.expand(count, -1, -1) if distances.shape[0] == 1 else distances[pair_index]
    pair_distances = pair_distances.reshape(count, kernel, kernel, height, width)
    # A running minimum over the rows of offsets: no [N, K*K, h*w] mask volume is built (it cost more than the
    # matching), and a GPU still gets one kernel per row rather than one per offset.
    squared = torch.full((count, height, width), float("inf"), device=previous_masks.device)
    for dy in range(kernel):
        band = in_mask[:, dy : dy + height]
        row = torch.stack([band[:, :, dx : dx + width] for dx in range(kernel)], dim=1)  # [N, K, h, w]
        squared = torch.minimum(squared, torch.where(row, pair_distances[:, dy], float("inf")).amin(dim=1))
    return feelvos_distance(squared)


class DynamicSegmentationHead(nn.Module):
    """Mask logits of each instance from its matching maps, previous mask and the frame's features.

    The first conv over ``concat(features, instance maps)`` is split in two
    (convolution is linear): the part over the frame's features
    (:meth:`frame_term`) runs once per frame, the part over the instance's three
    maps once per instance, so an instance costs only the small layers.
    """

    INSTANCE_MAPS = 3  # global matching, local matching, previous mask

    def __init__(self, feature_channels: int, channels: int):
        super().__init__()
        self.frame_conv = nn.Conv2d(feature_channels, channels, 1)  # the body's 3x3 convs add the context
        self.instance_conv = nn.Conv2d(self.INSTANCE_MAPS, channels, 3, padding=1, bias=False)
        self.norm = nn.GroupNorm(min(8, channels), channels)
        half = max(8, channels // 2)
        self.body = nn.Sequential(
            conv_block(channels, half, padding=2, dilation=2),
            conv_block(half, half, padding=4, dilation=4),
            conv_block(half, half, padding=1),
            nn.Conv2d(half, 1, 1),
        )
        # Start from "background" (p = 0.1): an instance covers a few % of a frame, and a head that starts at
        # p = 0.5 first spends its steps learning to predict nothing (the focal-loss prior initialisation).
        nn.init.constant_(self.body[-1].bias, -2.2)

    def frame_term(self, features: torch.Tensor) -> torch.Tensor:
        """``[P, C, h, w]`` backbone (+ embedding) features -> ``[P, channels, h, w]``, once per frame."""
        return self.frame_conv(features)

    def forward(self, frame_terms: torch.Tensor, pair_index: torch.Tensor, instance_maps: torch.Tensor) -> torch.Tensor:
        """``frame_terms[pair_index]`` + conv of ``instance_maps`` ``[N, 3, h, w]`` -> logits ``[N, h, w]``."""
        hidden = torch.relu(self.norm(frame_terms[pair_index] + self.instance_conv(instance_maps)))
        return self.body(hidden)[:, 0]
