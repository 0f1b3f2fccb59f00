"""Training augmentations for one frame and its instance masks, reproducible from a seed.

Each sample draws its random numbers from its own seed (derived from the
training seed, the step and the slot in the batch), so a resumed run sees the
same augmentations as an uninterrupted one, whatever the number of loader
workers. The transforms themselves are torchvision's ``transforms.v2``.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

# Instances with fewer mask pixels than this after cropping are dropped (too small to learn from).
MIN_INSTANCE_PIXELS = 8


def augmentation(aug_cfg: Mapping, height: int, width: int) -> v2.Transform:
    """Flip, scale jitter (resize, then crop or pad back to ``height x width``) and colour jitter.

    ``aug_cfg`` keys: ``hflip`` (probability), ``scale`` (``[low, high]``
    factors on the image size; ``[1, 1]`` is off), ``color`` (brightness,
    contrast and saturation jitter strength; 0 is off).
    """
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip(p=float(aug_cfg["hflip"]))]
    low, high = (float(v) for v in aug_cfg["scale"])
    if (low, high) != (1.0, 1.0):
        short = min(height, width)
        steps.append(v2.RandomResize(max(8, round(short * low)), round(short * high) + 1))
        steps.append(v2.RandomCrop((height, width), pad_if_needed=True, fill=0))
    strength = float(aug_cfg["color"])
    if strength > 0:
        steps.append(v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength))
    return v2.Compose(steps)


def augment_sample(
    image: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor, aug_cfg: Mapping, seed: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Augment one frame; the result has the frame's size.

    ``image`` is ``uint8 [3, H, W]`` RGB, ``masks`` ``uint8 [K, H, W]``,
    ``labels`` ``int64 [K]``. Returns the ``float32 [3, H, W]`` image in
    ``[0, 1]`` and a torchvision detection target (see :func:`make_target`).
    """
    height, width = image.shape[-2:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        image, masks = augmentation(aug_cfg, height, width)(tv_tensors.Image(image), tv_tensors.Mask(masks))
    return image.as_subclass(torch.Tensor).float().div_(255.0), make_target(masks.as_subclass(torch.Tensor), labels)


def make_target(masks: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The Mask R-CNN training target of ``uint8 [K, H, W]`` masks and ``int64 [K]`` labels.

    ``boxes float32 [K', 4]`` are the masks' tight boxes in pixel-edge
    coordinates (``x1, y1, x2, y2``; a one-pixel mask at column 5 spans
    ``5 .. 6``), ``labels int64 [K']``, ``masks uint8 [K', H, W]``, where
    masks under ``MIN_INSTANCE_PIXELS`` are dropped. ``K'`` may be 0.
    """
    keep = masks.flatten(1).sum(1) >= MIN_INSTANCE_PIXELS if len(masks) else torch.zeros(0, dtype=torch.bool)
    masks, labels = masks[keep], labels[keep]
    boxes = masks_to_boxes(masks) if len(masks) else torch.zeros((0, 4))
    boxes[:, 2:] += 1.0
    return {"boxes": boxes.float(), "labels": labels.long(), "masks": masks.to(torch.uint8)}
