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
:class:`tubelets.io.frames.VideoFrames`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN

from tubelets.models.inference import fpn_features, frames_to_tensors, model_device
from tubelets.models.ipdt.model import IPDT, FrameEncoding

P2_LEVEL, P3_LEVEL = "0", "1"


@torch.no_grad()
def backbone_levels(detector: MaskRCNN, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(P2 [B, C, h, w], P3 [B, C, h/2, w/2], scale)`` of ``uint8 [H, W, 3]`` frames of one size."""
    images = frames_to_tensors(frames, model_device(detector))
    features, sizes = fpn_features(detector, images)
    scale = sizes[0][0] / images[0].shape[-2]
    return features[P2_LEVEL], features[P3_LEVEL], float(scale)


class FeatureWindow:
    """``window[frame]`` -> the ``FrameEncoding`` (``P = 1``) of one video's frame, computed once while cached."""

    def __init__(self, detector: MaskRCNN, model: IPDT, frames: Callable[[int], np.ndarray], capacity: int = 32):
        self._detector, self._model, self._frames = detector, model, frames
        self._capacity = max(2, int(capacity))  # the current and the previous frame at least
        self._cache: OrderedDict[int, FrameEncoding] = OrderedDict()
        self.computed = 0  # frames encoded so far (a frame evicted and asked again counts twice)

    def __getitem__(self, frame: int) -> FrameEncoding:
        if frame in self._cache:
            self._cache.move_to_end(frame)
            return self._cache[frame]
        encoding = self._encode(frame)
        self._cache[frame] = encoding
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return encoding

    @torch.no_grad()
    def _encode(self, frame: int) -> FrameEncoding:
        image = self._frames(frame)
        p2, p3, scale = backbone_levels(self._detector, [image])
        self.computed += 1
        return self._model.encode_frames(p2, p3, scale, tuple(image.shape[:2]))
