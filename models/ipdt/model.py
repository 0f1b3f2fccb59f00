"""The IPDT network: the instance-level Siamese heads and the pixel-level FEELVOS heads in one module.

The module holds no backbone: it reads the frozen detector's FPN levels
(P2 at stride 4 for the pixel level, P3 at stride 8 for the instance level),
computed once per frame (:mod:`tubelets.models.ipdt.features`). The methods
split the work into what runs once per frame (:meth:`IPDT.encode_frames`)
and what runs once per frame for *all* instances together
(:meth:`IPDT.track_instances`, :meth:`IPDT.segment_instances`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import nn

from tubelets.errors import ConfigError
from tubelets.models.ipdt import geometry
from tubelets.models.ipdt.pixel import (
    DynamicSegmentationHead,
    PixelEmbedding,
    global_matching,
    local_distances,
    local_matching,
)
from tubelets.models.ipdt.siamese import Correlator, Discriminator, crop_features


@dataclasses.dataclass(frozen=True)
class IPDTConfig:
    """Architecture of the heads; stored in the tracker checkpoint (``model_config``)."""

    feature_channels: int = 64  # the detector's FPN width
    embedding_dim: int = 16  # pixel embedding
    siamese_channels: int = 64
    segmentation_channels: int = 32
    template_size: int = 7  # RoI cells of the reference instance
    search_size: int = 15  # RoI cells of the search window (same cell size)
    context: float = 1.5  # template region = box x context
    anchor_scales: tuple[float, ...] = (0.85, 1.0, 1.18)
    local_radius: int = 4  # local matching window, P2 cells each side
    reference_pixels: int = 96  # reference embeddings kept per instance

    @property
    def response_size(self) -> int:
        return self.search_size - self.template_size + 1

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "IPDTConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown IPDT model setting(s) {unknown}; known: {sorted(known)}")
        values = dict(values)
        if "anchor_scales" in values:
            values["anchor_scales"] = tuple(float(s) for s in values["anchor_scales"])
        return cls(**values)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["anchor_scales"] = list(self.anchor_scales)
        return values


@dataclasses.dataclass
class FrameEncoding:
    """The per-frame part of the network for ``P`` frames.

    ``p2`` ``[P, C, h, w]`` and ``p3`` ``[P, C, h/2, w/2]`` are the detector's
    levels; ``embedding`` ``[P, D, h, w]`` the pixel embeddings;
    ``frame_terms`` ``[P, S, h, w]`` the segmentation head's frame conv.
    ``scale`` maps frame pixels to the detector's resized frame (see
    :mod:`geometry`); ``frame_size`` is ``(H, W)``.
    """

    p2: torch.Tensor
    p3: torch.Tensor
    embedding: torch.Tensor
    frame_terms: torch.Tensor
    scale: float
    frame_size: tuple[int, int]

    @property
    def p2_size(self) -> tuple[int, int]:
        return tuple(self.p2.shape[-2:])

    def select(self, index: int) -> "FrameEncoding":
        """Frame ``index`` alone (``P = 1``), as views."""
        part = slice(index, index + 1)
        return FrameEncoding(self.p2[part], self.p3[part], self.embedding[part], self.frame_terms[part],
                             self.scale, self.frame_size)


class IPDT(nn.Module):
    """Instance-Pixel Dual Tracker heads (see the package docstring for the data flow)."""

    def __init__(self, config: IPDTConfig = IPDTConfig()):
        super().__init__()
        self.config = config
        anchors = len(config.anchor_scales)
        self.embedding = PixelEmbedding(config.feature_channels, config.embedding_dim)
        self.segmentation = DynamicSegmentationHead(config.feature_channels + config.embedding_dim,
                                                    config.segmentation_channels)
        self.discriminator = Discriminator(config.feature_channels, config.siamese_channels, anchors)
        self.correlator = Correlator(config.feature_channels, config.siamese_channels, anchors)

    def encode_frames(self, p2: torch.Tensor, p3: torch.Tensor, scale: float,
                      frame_size: tuple[int, int]) -> FrameEncoding:
        """Everything that depends on a frame only, for ``P`` frames at once."""
        embedding = self.embedding(p2)
        frame_terms = self.segmentation.frame_term(torch.cat([p2, embedding], dim=1))
        return FrameEncoding(p2, p3, embedding, frame_terms, scale, frame_size)

    def templates(self, encoding: FrameEncoding, boxes: torch.Tensor, frame_index: torch.Tensor) -> torch.Tensor:
        """Reference RoI features ``[N, C, T, T]`` of ``boxes`` (frame pixels) in frames ``frame_index``."""
        regions = geometry.scale_boxes(boxes, self.config.context)
        return crop_features(encoding.p3, regions, frame_index, self.config.template_size, encoding.scale,
                             geometry.P3_STRIDE)

    def track_instances(self, encoding: FrameEncoding, frame_index: torch.Tensor, templates: torch.Tensor,
                        last_boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The Siamese step for ``N`` instances:
        ``(logits [N, A, R, R], deltas [N, 4A, R, R], anchors [N, A, R, R, 4])``.

        The search window is centred on ``last_boxes`` (frame pixels, the
        motion-predicted last position) in frame ``frame_index[n]`` of ``encoding``.
        """
        c = self.config
        windows = geometry.search_boxes(last_boxes, c.context, c.template_size, c.search_size)
        search = crop_features(encoding.p3, windows, frame_index, c.search_size, encoding.scale, geometry.P3_STRIDE)
        anchors = geometry.anchor_grid(last_boxes, c.context, c.template_size, c.search_size, c.anchor_scales)
        return self.discriminator(templates, search), self.correlator(templates, search), anchors

    def segment_instances(self, current: FrameEncoding, previous: FrameEncoding, pair_index: torch.Tensor,
                          reference: tuple[torch.Tensor, torch.Tensor], previous_masks: torch.Tensor,
                          local_masks: torch.Tensor | None = None) -> torch.Tensor:
        """The FEELVOS step for ``N`` instances: mask logits ``[N, h, w]`` on the P2 grid.

        ``current``/``previous`` hold ``P`` frame pairs (previous: the frame one
        step back in the tracking direction); ``pair_index[n]`` picks instance
        ``n``'s pair. ``reference`` is ``(vectors [N, K, D], valid [N, K])``
        from :func:`pixel.reference_vectors`; ``previous_masks`` ``[N, h, w]``,
        the mask prior; ``local_masks`` (default: ``previous_masks``) the
        previous frame's pixels local matching reads.
        """
        radius = self.config.local_radius
        embedding = current.embedding[pair_index] if current.embedding.shape[0] > 1 else current.embedding
        global_map = global_matching(embedding, *reference)
        distances = local_distances(current.embedding, previous.embedding, radius)
        local_map = local_matching(distances, pair_index, previous_masks if local_masks is None else local_masks,
                                   radius)
        maps = torch.stack([global_map, local_map, previous_masks], dim=1)
        return self.segmentation(current.frame_terms, pair_index, maps)
