"""The Instance-Pixel Dual Tracker and its two single-level ablations, under the tracker interface.

* ``ipdt``: both levels. The Siamese instance level gives the refined box and
  a discriminator confidence, the FEELVOS pixel level the mask; the mask is
  cut to the box, and the instance is lost in a frame only when both levels'
  confidences are low (the larger of the two is its confidence).
* ``pixel``: the pixel level alone (the paper's FEELVOS row): the mask's box,
  the mask's confidence.
* ``instance``: the Siamese level alone: the box and its confidence; the mask
  is the last one moved and rescaled into the new box.

Each takes exactly the settings its levels read (a key it would ignore is an
error): all three the checkpoint, the sweeps' and the merge's; the pixel
level ``mask_threshold``; the instance level ``window_influence`` and the
colour rules; ``ipdt`` alone ``box_margin``, the cut of one level's mask to
the other's box.

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
from tubelets.models.setting_checks import TRACKING_RULES, check_settings
from tubelets.models.trackers.base import FrameSource, Tracker, frame_getter, register_tracker
from tubelets.models.tubelet_merge import merge_tubelets
from tubelets.records import Tubelet, VideoProposals


@dataclasses.dataclass(eq=False, kw_only=True)
class DualTracker(UsesTrackingModels, Tracker):
    """The settings all three trackers read (``tracker.<name>`` config keys); each level's own are in a mixin.

    No setting has a default: ``configs/default.yaml`` holds them, so
    ``IpdtTracker(**tubelets.config.defaults("tracker.ipdt"))`` is the
    tracker a run gets. A tracker takes exactly the keys its levels read
    (``PropagationSettings.unread_by``), so a key it would ignore is an error.
    """

    checkpoint: Optional[str]  # tracker checkpoint (fsspec URL or builtin:NAME)
    detector_checkpoint: Optional[str]  # null: the detector recorded in the tracker checkpoint
    device: str  # auto (GPU when present) | cpu | cuda[:N]
    precision: str  # the backbone pass: auto | float32 | bfloat16 | float16 (features.FeatureWindow)
    min_confidence: float  # an instance below is lost in that frame
    max_lost: int  # consecutive lost frames before a direction stops
    snap_iou: float  # a prediction overlapping a proposal more takes the proposal's mask and score
    cover_iou: float  # a proposal overlapping a prediction more starts no new instance
    max_unconfirmed: Optional[int]  # steps with no proposal confirming before a direction stops (tail dropped)
    switch_iou: Optional[float]  # backward: a held proposal stops an extension apart from its holder (None: off)
    th_seq: float  # tubelets with a higher temporal mask IoU are merged
    feature_window: int  # frames whose features are kept

    LEVELS: ClassVar[tuple[bool, bool]]  # (instance level, pixel level)

    def __post_init__(self) -> None:
        self._check_settings()
        self.load_models()

    @property
    def settings(self) -> PropagationSettings:
        use_instance, use_pixel = self.LEVELS
        propagated = {field.name for field in dataclasses.fields(PropagationSettings)}
        own = {name: value for name, value in vars(self).items() if name in propagated}
        unread = dict.fromkeys(PropagationSettings.unread_by(use_instance, use_pixel))  # not among this one's fields
        return PropagationSettings(use_instance=use_instance, use_pixel=use_pixel, **unread, **own)

    def track(self, proposals: VideoProposals, frames: Optional[FrameSource] = None) -> list[Tubelet]:
        """Tubelets of one video; ``frames`` (the decoded RGB frames) are read only if there is a proposal."""
        _check_frame_order(proposals)
        if self.model is None:
            raise ConfigError(f"tracker {type(self).__name__} has no checkpoint: set tracker.<name>.checkpoint")
        if not any(len(detections) for detections in proposals.frames):
            return []
        images = frame_getter(frames)
        window = FeatureWindow(self.detector, self.model, images, self.feature_window, precision=self.precision)
        candidates = Propagator(self.model, self.settings).run(proposals, window.__getitem__, images)
        return merge_tubelets(candidates, self.th_seq)

    def _check_settings(self) -> None:
        check_settings(vars(self), TRACKING_RULES, "tracker setting ")


@dataclasses.dataclass(eq=False, kw_only=True)
class PixelLevel:
    """The setting only the pixel level reads (``ipdt``, ``pixel``)."""

    mask_threshold: float  # on mask probabilities


@dataclasses.dataclass(eq=False, kw_only=True)
class InstanceLevel:
    """The settings only the instance level reads (``ipdt``, ``instance``)."""

    window_influence: float  # Siamese cosine-window weight (motion prior)
    # A proposal further in colour from the seed confirms nothing (None: off).
    max_colour_distance: Optional[float]
    # With the colour check: a forward extension that stopped continues as a new instance of its colour started
    # in its search window up to this many frames after its last kept frame (None: off; above max_unconfirmed + 1
    # to relink extensions that the guard stopped).
    relink_frames: Optional[int]
    check_fill_colour: bool  # with the colour check: a filled frame of another colour is lost there


@register_tracker("ipdt")
@dataclasses.dataclass(eq=False, kw_only=True)
class IpdtTracker(DualTracker, PixelLevel, InstanceLevel):
    """Instance and pixel level together (the method)."""

    box_margin: float  # the pixel level's mask is cut to the instance level's box grown by this factor

    LEVELS: ClassVar[tuple[bool, bool]] = (True, True)


@register_tracker("pixel")
@dataclasses.dataclass(eq=False, kw_only=True)
class PixelTracker(DualTracker, PixelLevel):
    """Pixel level only (FEELVOS-style mask propagation)."""

    LEVELS: ClassVar[tuple[bool, bool]] = (False, True)


@register_tracker("instance")
@dataclasses.dataclass(eq=False, kw_only=True)
class InstanceTracker(DualTracker, InstanceLevel):
    """Instance level only (Siamese box tracking, the mask carried along)."""

    LEVELS: ClassVar[tuple[bool, bool]] = (True, False)


def _check_frame_order(proposals: VideoProposals) -> None:
    numbers = [detections.frame for detections in proposals.frames]
    if numbers != list(range(len(numbers))):
        raise ValueError(f"video {proposals.meta.key!r}: proposals must hold frames 0..n-1 in order, got {numbers}")
