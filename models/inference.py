"""Running a loaded detector on frames, and reaching its FPN features.

Frames cross this boundary as ``uint8`` RGB arrays ``[H, W, 3]`` (what the
video readers yield); the model sees ``float32 [3, H, W]`` in ``[0, 1]``.

The tracker reuses the detector's pyramid: :func:`detect_with_features`
returns the detections and the features of the same forward pass, and
:func:`fpn_features` the features alone. Level ``"0"`` is P2 at stride 4 *of
the transformed batch*: each image is resized by ``image_sizes[i] / original
size`` (the preset's ``min_size``/``max_size``; 1.0 for ``small`` on 256x192
frames) and padded at the bottom/right to a multiple of 32, so pixel
``(x, y)`` of frame ``i`` sits at ``(x * scale / 4, y * scale / 4)`` in P2.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN


def frames_to_tensors(frames: Sequence[np.ndarray], device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """``uint8 [H, W, 3]`` RGB frames as ``float32 [3, H, W]`` tensors in ``[0, 1]`` on ``device``."""
    tensors = []
    for frame in frames:
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB frame [H, W, 3], got shape {frame.shape}")
        tensor = torch.tensor(frame, dtype=torch.uint8, device=device)  # a copy: decoded frames may be read-only
        tensors.append(tensor.permute(2, 0, 1).float().div_(255.0))
    return tensors


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s parameters."""
    return next(model.parameters()).device


# The ``precision`` config keys' values (detector, trackers, vos) and their autocast dtypes (None: float32 as is).
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The dtype the backbone autocasts to for a ``precision`` key on ``device``; None: float32, no autocast.

    ``auto`` is bfloat16 on a CUDA GPU (its tensor cores run it several times faster than float32, and its
    float32-wide exponent needs no overflow guard, unlike float16) and float32 elsewhere: on the CPU autocast
    is slower, and float32 keeps a CPU run's tubelets those of every earlier CPU run, to the bit.

    Only the backbone (ResNet + FPN, most of a pass's arithmetic) runs at it; the RPN, the RoI heads and the
    tracker's heads take its levels in float32 (:func:`backbone_features`). Measured with detector-small on 30
    fresh Shapes-VIS videos (740 frames, CPU autocast): per-frame mask AP 47.3 in float32, 47.4 with a bfloat16
    backbone, 46.0 with the whole detector in bfloat16; the tracker's pixel embedding in bfloat16 cost its
    propagated masks 5-10 points of IoU, its backbone under 0.2.
    """
    if precision == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else None
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto or one of {', '.join(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


def backbone_features(model: MaskRCNN, tensors: torch.Tensor, precision: str = "float32") -> OrderedDict:
    """The FPN levels of a transformed batch ``tensors``, the backbone run at ``precision``, in float32."""
    dtype = autocast_dtype(precision, tensors.device)
    if dtype is None:
        return model.backbone(tensors)
    with torch.autocast(tensors.device.type, dtype=dtype):
        features = model.backbone(tensors)
    return OrderedDict((name, level.float()) for name, level in features.items())


def fpn_levels(model: MaskRCNN, images: list[torch.Tensor]) -> tuple[OrderedDict, list[tuple[int, int]]]:
    """:func:`fpn_features` with autograd, for training through the backbone (domain adaptation)."""
    batch, _ = model.transform(images)
    return model.backbone(batch.tensors), [tuple(size) for size in batch.image_sizes]


@torch.no_grad()
def fpn_features(model: MaskRCNN, images: list[torch.Tensor],
                 precision: str = "float32") -> tuple[OrderedDict, list[tuple[int, int]]]:
    """The FPN pyramid of ``images`` (``float32 [3, H, W]`` in ``[0, 1]``) and the transformed image sizes.

    Returns ``(features, image_sizes)``: ``features`` maps ``"0"``, ``"1"``,
    ``"2"``, ``"3"``, ``"pool"`` (strides 4, 8, 16, 32, 64) to ``float32
    [B, C, h, w]``; ``image_sizes[i]`` is ``(height, width)`` of image ``i``
    after resizing, before padding. The backbone runs at ``precision`` (:func:`autocast_dtype`).
    """
    batch, _ = model.transform(images)
    return backbone_features(model, batch.tensors, precision), [tuple(size) for size in batch.image_sizes]


@torch.no_grad()
def detect_with_features(
    model: MaskRCNN, images: list[torch.Tensor], precision: str = "float32"
) -> tuple[list[dict[str, torch.Tensor]], OrderedDict, list[tuple[int, int]]]:
    """One eval-mode forward pass: ``(detections, features, image_sizes)``.

    ``detections`` are exactly what ``model(images)`` returns (see
    :mod:`tubelets.models.detector`) at float32 ``precision``; ``features`` and ``image_sizes`` as in
    :func:`fpn_features`, with the backbone at ``precision``. ``model`` must be in eval mode.
    """
    if model.training:
        raise RuntimeError("detect_with_features needs the model in eval mode (model.eval())")
    original_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
    batch, _ = model.transform(images)
    features = backbone_features(model, batch.tensors, precision)
    proposals, _ = model.rpn(batch, features)
    detections, _ = model.roi_heads(features, proposals, batch.image_sizes)
    detections = model.transform.postprocess(detections, batch.image_sizes, original_sizes)
    return detections, features, [tuple(size) for size in batch.image_sizes]


@torch.no_grad()
def detect_each(model: MaskRCNN, frames: Sequence[np.ndarray],
                precision: str = "float32") -> list[dict[str, torch.Tensor]]:
    """``model(...)``'s output for each ``uint8 [H, W, 3]`` frame, every frame in a forward pass of its own, the
    backbone at ``precision`` (:func:`autocast_dtype`).

    Why not one pass for all: a frame's result would then depend on its batch-mates, twice over. torchvision
    pads a batch to its largest (resized) image, and the padding is what the convolutions see beyond the
    frame's edges: next to a portrait frame, a landscape one gets other detections outright. And the kernels
    (convolutions, the RoI heads' matrix products over the batch's boxes) take other code paths, so other
    summation orders, for another batch size: even next to frames of its size, a frame's boxes, scores and
    masks come out a few ulps off its own, enough to flip a threshold or NMS decision and so change tubelets.
    Alone, a frame's output depends on the frame, the model and the device (and the CPU thread count) only.
    """
    device = model_device(model)
    return [detect_with_features(model, frames_to_tensors([frame], device), precision)[0][0] for frame in frames]


@torch.no_grad()
def detect(model: MaskRCNN, frames: Sequence[np.ndarray], precision: str = "float32") -> list[dict[str, np.ndarray]]:
    """Detections on ``uint8 [H, W, 3]`` frames, one dict a frame, as numpy arrays.

    Keys: ``boxes float32 [N, 4]`` (``x1, y1, x2, y2`` pixels), ``labels int64
    [N]`` (data set category ids), ``scores float32 [N]`` (descending),
    ``masks float32 [N, H, W]`` soft masks in ``[0, 1]``.

    One batched forward pass, the backbone at ``precision``: a frame's result depends on the others
    (:func:`detect_each`); fine where the batches are fixed (evaluating a checkpoint), not in the pipeline.
    """
    if not frames:
        return []
    outputs, _, _ = detect_with_features(model, frames_to_tensors(frames, model_device(model)), precision)
    return [
        {
            "boxes": out["boxes"].cpu().numpy(),
            "labels": out["labels"].cpu().numpy(),
            "scores": out["scores"].cpu().numpy(),
            "masks": out["masks"][:, 0].cpu().numpy(),
        }
        for out in outputs
    ]
