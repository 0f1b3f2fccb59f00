"""The Instance-Pixel Dual Tracker and its two single-level ablations, under the tracker interface.

* ``ipdt``: both levels. The Siamese instance level gives the refined box and
  a discriminator confidence, the FEELVOS pixel level the mask; the mask is
  cut to the box, and the instance is lost in a frame only when both levels'
  confidences are low (the larger of the two is its confidence).
* ``pixel``: the pixel level alone (the paper's FEELVOS row): the mask's box,
  the mask's confidence.
* ``instance``: the Siamese level alone: the box and its confidence; the mask
  is the last one moved and rescaled into the new box.

With ``max_colour_distance`` set, the instance level (``ipdt``, ``instance``)
also checks a proposal's colour against the seed's before it takes it
(:mod:`tubelets.models.ipdt.appearance`), and with ``relink_frames`` it
re-identifies an object whose extension stopped when a new instance of its
colour starts where it would be.

Each kept proposal is a reference instance extended forward and backward
through the video (:mod:`tubelets.models.ipdt.propagation`), then tubelets of
one object are merged (:mod:`tubelets.models.tubelet_merge`). The heads come
from ``checkpoint`` (a tracker checkpoint, see
:mod:`tubelets.models.ipdt.checkpoint`), the backbone from the detector that
checkpoint was trained against, frozen; both load when the tracker is built,
so a missing or mismatched checkpoint fails before any video is read.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from tubelets.errors import ConfigError
from tubelets.models.ipdt.checkpoint import UsesTrackingModels
from tubelets.models.ipdt.features import FeatureWindow
from tubelets.models.ipdt.propagation import PropagationSettings, Propagator
from tubelets.models.trackers.base import FrameSource, Tracker, frame_getter, register_tracker
from tubelets.models.tubelet_merge import merge_tubelets
from tubelets.records import Tubelet, VideoProposals


@dataclasses.dataclass(eq=False)
class DualTracker(UsesTrackingModels, Tracker):
    """Settings shared by ``ipdt``, ``pixel`` and ``instance`` (the ``tracker.<name>`` config keys)."""

    checkpoint: Optional[str] = "builtin:tracker-small"  # tracker checkpoint (fsspec URL or builtin:NAME)
    detector_checkpoint: Optional[str] = None  # null: the detector recorded in the tracker checkpoint
    device: str = "auto"  # auto (GPU when present) | cpu | cuda[:N]
    min_confidence: float = 0.5  # an instance below is lost in that frame
    max_lost: int = 6  # consecutive lost frames before a direction stops
    mask_threshold: float = 0.5
    box_margin: float = 1.15  # ipdt: the mask is cut to the box grown by this factor
    window_influence: float = 0.2  # Siamese cosine-window weight (motion prior)
    snap_iou: float = 0.3  # a prediction overlapping a proposal more takes the proposal's mask and score
    cover_iou: float = 0.5  # a proposal overlapping a prediction more starts no new instance
    max_unconfirmed: Optional[int] = None  # steps with no proposal confirming before a direction stops (tail dropped)
    switch_iou: Optional[float] = None  # backward: a held proposal stops an extension apart from its holder (None: off)
    # Instance level (ipdt, instance): a proposal further in colour from the seed confirms nothing (None: off).
    max_colour_distance: Optional[float] = None
    # With the colour check: a forward extension that stopped continues as a new instance of its colour started
    # in its search window up to this many frames after its last kept frame (None: off; above max_unconfirmed + 1
    # to relink extensions that the guard stopped).
    relink_frames: Optional[int] = None
    check_fill_colour: bool = False  # with the colour check: a filled frame of another colour is lost there
    th_seq: float = 0.5  # tubelets with a higher temporal mask IoU are merged
    feature_window: int = 32  # frames whose features are kept

    LEVELS: ClassVar[tuple[bool, bool]] = (True, True)  # (instance level, pixel level)

    def __post_init__(self) -> None:
        self._check_settings()
        self.load_models()

    @property
    def settings(self) -> PropagationSettings:
        use_instance, use_pixel = self.LEVELS
        return PropagationSettings(
            use_instance=use_instance,
            use_pixel=use_pixel,
            min_confidence=self.min_confidence,
            max_lost=self.max_lost,
            mask_threshold=self.mask_threshold,
            box_margin=self.box_margin,
            window_influence=self.window_influence,
            snap_iou=self.snap_iou,
            cover_iou=self.cover_iou,
            max_unconfirmed=self.max_unconfirmed,
            switch_iou=self.switch_iou,
            max_colour_distance=self.max_colour_distance,
            relink_frames=self.relink_frames,
            check_fill_colour=self.check_fill_colour,
        )

    def track(self, proposals: VideoProposals, frames: Optional[FrameSource] = None) -> list[Tubelet]:
        """Tubelets of one video; ``frames`` (the decoded RGB frames) are read only if there is a proposal."""
        _check_frame_order(proposals)
        if self.model is None:
            raise ConfigError(f"tracker {type(self).__name__} has no checkpoint: set tracker.<name>.checkpoint")
        if not any(len(detections) for detections in proposals.frames):
            return []
        images = frame_getter(frames)
        window = FeatureWindow(self.detector, self.model, images, self.feature_window)
        candidates = Propagator(self.model, self.settings).run(proposals, window.__getitem__, images)
        return merge_tubelets(candidates, self.th_seq)

    def _check_settings(self) -> None:
        for name in ("min_confidence", "mask_threshold", "window_influence", "snap_iou", "cover_iou", "th_seq",
                     "switch_iou"):
            value = getattr(self, name)
            if name == "switch_iou" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"tracker setting {name} must be a number in [0, 1], got {value!r}")
        for name, minimum in (("max_lost", 0), ("feature_window", 2), ("max_unconfirmed", 0), ("relink_frames", 0)):
            value = getattr(self, name)
            if name in ("max_unconfirmed", "relink_frames") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"tracker setting {name} must be an integer >= {minimum}, got {value!r}")
        if isinstance(self.box_margin, bool) or not isinstance(self.box_margin, (int, float)) or self.box_margin < 1:
            raise ConfigError(f"tracker setting box_margin must be a number >= 1, got {self.box_margin!r}")
        if not isinstance(self.check_fill_colour, bool):
            raise ConfigError(
                f"tracker setting check_fill_colour must be true or false, got {self.check_fill_colour!r}")
        distance = self.max_colour_distance
        if distance is not None and (isinstance(distance, bool) or not isinstance(distance, (int, float))
                                     or not distance > 0):
            raise ConfigError(f"tracker setting max_colour_distance must be a number > 0 or null, got {distance!r}")


@register_tracker("ipdt")
@dataclasses.dataclass(eq=False)
class IpdtTracker(DualTracker):
    """Instance and pixel level together (the method)."""

    LEVELS: ClassVar[tuple[bool, bool]] = (True, True)


@register_tracker("pixel")
@dataclasses.dataclass(eq=False)
class PixelTracker(DualTracker):
    """Pixel level only (FEELVOS-style mask propagation)."""

    LEVELS: ClassVar[tuple[bool, bool]] = (False, True)


@register_tracker("instance")
@dataclasses.dataclass(eq=False)
class InstanceTracker(DualTracker):
    """Instance level only (Siamese box tracking, the mask carried along)."""

    LEVELS: ClassVar[tuple[bool, bool]] = (True, False)


def _check_frame_order(proposals: VideoProposals) -> None:
    numbers = [detections.frame for detections in proposals.frames]
    if numbers != list(range(len(numbers))):
        raise ValueError(f"video {proposals.meta.key!r}: proposals must hold frames 0..n-1 in order, got {numbers}")
