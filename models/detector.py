"""The proposal model: a torchvision Mask R-CNN with an FPN backbone, built from a preset.

Presets live in a small registry; :func:`build_detector` is the one way to
build a model from the ``detector:`` config section::

    model = build_detector({"preset": "small", "num_classes": 7})

The result is a plain ``torchvision.models.detection.MaskRCNN``, so the
torchvision data contract holds. Input: a list of ``float32`` images
``[3, H, W]`` with values in ``[0, 1]``, RGB. Output in eval mode, one dict a
image, in the input image's pixel coordinates:

* ``boxes``  ``float32 [N, 4]``, ``x1, y1, x2, y2`` with ``0 <= x1 < x2 <= W``
* ``labels`` ``int64 [N]``, a data set category id (0, the background, never appears)
* ``scores`` ``float32 [N]`` in ``[0, 1]``, sorted descending
* ``masks``  ``float32 [N, 1, H, W]``, soft masks in ``[0, 1]`` (threshold at 0.5)

A model label *is* the data set's category id: a model with ``num_classes``
classes predicts ids ``1 .. num_classes - 1``. The FPN features (P2 at stride 4
and up) are available through :func:`tubelets.models.inference.fpn_features`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign

from tubelets.errors import ConfigError
from tubelets.registry import Registry
from tubelets.models.backbones import resnet50_fpn_backbone, small_fpn_backbone

PresetBuilder = Callable[[int, dict], MaskRCNN]
PRESETS: Registry[PresetBuilder] = Registry("detector preset")

# detector config keys -> MaskRCNN keyword arguments; a null value keeps the preset's choice.
_INFERENCE_KEYS = {
    "min_size": "min_size",
    "max_size": "max_size",
    "score_threshold": "box_score_thresh",
    "nms_threshold": "box_nms_thresh",
    "detections_per_frame": "box_detections_per_img",
}


def register_preset(name: str) -> Callable[[PresetBuilder], PresetBuilder]:
    """Decorator: register ``builder(num_classes, overrides) -> MaskRCNN`` under ``name``."""
    return PRESETS.register(name)


def known_presets() -> list[str]:
    """Names of the registered detector presets."""
    return PRESETS.names()


def build_detector(detector_cfg: Mapping[str, Any]) -> MaskRCNN:
    """A randomly initialised Mask R-CNN for ``detector_cfg`` (the ``detector:`` config section).

    Reads ``preset``, ``num_classes`` and the inference keys ``min_size``,
    ``max_size``, ``score_threshold``, ``nms_threshold``,
    ``detections_per_frame`` (each null keeps the preset's value). Weights are
    loaded separately (:func:`tubelets.models.checkpoints.load_detector`).
    """
    builder = PRESETS.get(detector_cfg.get("preset"))
    num_classes = int(detector_cfg.get("num_classes") or 0)
    if num_classes < 2:
        raise ConfigError(f"detector.num_classes must count the background and at least one class, got {num_classes}")
    overrides = {arg: detector_cfg[key] for key, arg in _INFERENCE_KEYS.items() if detector_cfg.get(key) is not None}
    return builder(num_classes, overrides)


@register_preset("r50-fpn")
def _r50_fpn(num_classes: int, overrides: dict) -> MaskRCNN:
    """torchvision's ``maskrcnn_resnet50_fpn`` (800-1333 px images, 256-channel FPN), for GPU workers.

    Meant to start from trained weights (a COCO checkpoint, as ``detector.checkpoint``
    or ``train_detector.init_from``): as in torchvision, the stem and ``layer1`` are frozen.
    """
    return MaskRCNN(resnet50_fpn_backbone(), num_classes=num_classes, **overrides)


@register_preset("small")
def _small(num_classes: int, overrides: dict) -> MaskRCNN:
    """A ~2M-parameter model for CPUs and 256x192 frames: narrow backbone, 64-channel FPN, small heads.

    Anchors 16-256 px (one size a level, P2-P6) cover Shapes-VIS objects of
    15-48 px radius with room for partly visible and scaled ones; frames are
    used at their native size (shorter side 192, longer at most 256).
    """
    fpn_channels = 64
    levels = ["0", "1", "2", "3"]
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,), (256,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5)
    settings = dict(
        min_size=192,
        max_size=256,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(fpn_channels, anchors.num_anchors_per_location()[0]),
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=500,
        rpn_post_nms_top_n_test=200,
        rpn_batch_size_per_image=128,
        box_roi_pool=MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(fpn_channels * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, num_classes),
        box_batch_size_per_image=128,
        box_detections_per_img=50,
        mask_roi_pool=MultiScaleRoIAlign(levels, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(fpn_channels, [fpn_channels] * 4, dilation=1),
        mask_predictor=MaskRCNNPredictor(fpn_channels, fpn_channels, num_classes),
    )
    settings.update(overrides)
    return MaskRCNN(small_fpn_backbone(fpn_channels=fpn_channels), num_classes=None, **settings)
