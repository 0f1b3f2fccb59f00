"""Backbone features for the tracker: the frozen detector's FPN, once per frame, in a bounded window.

Why recompute the backbone here rather than reuse the proposal stage's? The
proposals run in Beam's ``RunInference`` on other workers, batched across
videos; shipping every frame's P2/P3 maps (about 1 MB a 256x192 frame in
float32, tens of MB at 800 px) through the shuffle to the tracking worker
would cost far more than running the backbone once more per frame here (a
small fraction of the detector's time: no RPN, no RoI heads).

:class:`FeatureWindow` computes a frame's :class:`~model.FrameEncoding` on
first use and keeps the ``capacity`` most recently used frames, so a long
video is never held whole (the frames themselves come from a lazy, windowed
:class:`tubelets.io.frames.VideoFrames`). VOS re-detection needs the
detector's proposals of the frames it tracks in: the window then runs the
whole detector instead of the backbone alone and keeps both from that pass.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN

from tubelets.models.inference import detect_with_features, fpn_features, frames_to_tensors, model_device
from tubelets.models.ipdt.model import IPDT, FrameEncoding

P2_LEVEL, P3_LEVEL = "0", "1"


@torch.no_grad()
def backbone_levels(detector: MaskRCNN, frames: Sequence[np.ndarray],
                    precision: str = "float32") -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(P2 [B, C, h, w], P3 [B, C, h/2, w/2], scale)`` of ``uint8 [H, W, 3]`` frames of one size.

    The backbone runs at ``precision`` (:func:`~tubelets.models.inference.autocast_dtype`); the levels come back
    in float32, which the heads run in: bfloat16 embeddings cost the pixel level's propagated masks 5-10 points
    of IoU with the truth (0.92-0.97 -> 0.83-0.90 on tests/models/trackers' missed-shapes video), a bfloat16
    backbone under 0.002.
    """
    images = frames_to_tensors(frames, model_device(detector))
    features, sizes = fpn_features(detector, images, precision)
    return features[P2_LEVEL], features[P3_LEVEL], sizes[0][0] / images[0].shape[-2]


@torch.no_grad()
def detected_levels(detector: MaskRCNN, frame: np.ndarray, min_score: float,
                    precision: str = "float32") -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """:func:`backbone_levels` of one frame plus, from the same pass, its detections' masks.

    The last item is ``float [D, H, W]`` (CPU) mask probabilities of the
    detections scoring ``min_score`` or more.
    """
    images = frames_to_tensors([frame], model_device(detector))
    (detections,), features, sizes = detect_with_features(detector, images, precision)
    keep = detections["scores"] >= min_score
    scale = sizes[0][0] / images[0].shape[-2]
    return features[P2_LEVEL], features[P3_LEVEL], scale, detections["masks"][keep, 0].float().cpu()


class FeatureWindow:
    """``window[frame]`` -> the ``FrameEncoding`` (``P = 1``) of one video's frame, computed once while cached.

    With ``proposal_score`` set, each frame's backbone pass is a full detector
    pass, and :meth:`proposals` gives the detections' masks from it, so a
    caller that needs both runs the backbone once per frame. They are kept
    for the ``proposal_capacity`` most recent frames only (they are frame-size
    maps); asking for an evicted frame's proposals runs its pass again.
    """

    def __init__(self, detector: MaskRCNN, model: IPDT, frames: Callable[[int], np.ndarray], capacity: int,
                 proposal_score: Optional[float] = None, proposal_capacity: int = 4, *, precision: str = "float32"):
        self._detector, self._model, self._frames = detector, model, frames
        self._precision = precision  # of the backbone pass (backbone_levels); the heads run in float32
        self._capacity = max(2, int(capacity))  # the current and the previous frame at least
        self._proposal_score, self._proposal_capacity = proposal_score, proposal_capacity
        self._cache: OrderedDict[int, FrameEncoding] = OrderedDict()
        self._proposals: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.computed = 0  # frames encoded so far (a frame evicted and asked again counts twice)

    def __getitem__(self, frame: int) -> FrameEncoding:
        if frame in self._cache:
            self._cache.move_to_end(frame)
            return self._cache[frame]
        return self._encode(frame)

    def proposals(self, frame: int) -> torch.Tensor:
        """``float [D, H, W]`` mask probabilities of the frame's detections scoring ``proposal_score`` or more."""
        if self._proposal_score is None:
            raise ValueError("this feature window keeps no proposals (proposal_score is None)")
        if frame not in self._proposals:
            self._encode(frame)
        self._proposals.move_to_end(frame)
        return self._proposals[frame]

    @torch.no_grad()
    def _encode(self, frame: int) -> FrameEncoding:
        """Encode ``frame`` (and detect in it, with ``proposal_score``), caching both."""
        image = self._frames(frame)
        if self._proposal_score is None:
            p2, p3, scale = backbone_levels(self._detector, [image], self._precision)
        else:
            p2, p3, scale, proposals = detected_levels(self._detector, image, self._proposal_score, self._precision)
            _keep(self._proposals, frame, proposals, self._proposal_capacity)
        self.computed += 1
        encoding = self._model.encode_frames(p2, p3, scale, tuple(image.shape[:2]))
        _keep(self._cache, frame, encoding, self._capacity)
        return encoding


def _keep(cache: OrderedDict, key: int, value, capacity: int) -> None:
    """Store ``value`` as the most recent entry, dropping the oldest beyond ``capacity``."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > capacity:
        cache.popitem(last=False)
