"""Training losses of the IPDT heads: plain functions of predictions and targets.

* :func:`anchor_labels`: which Siamese proposals are the instance (box IoU
  with the target box >= ``positive_iou``), which are not (< ``negative_iou``),
  which are ignored; an absent instance makes every proposal negative;
* :func:`discriminator_loss`: BCE, positives and negatives weighted equally,
  plus the negatives on the video's other instances (:func:`distractor_anchors`)
  as a third group of the same weight: they are few among the negatives,
  and the ones a tracker confuses;
* :func:`box_loss`: smooth L1 on the positives' box deltas;
* :func:`mask_loss`: per-pixel BCE plus a soft-IoU term, on frame pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tubelets.models.ipdt import geometry


def anchor_labels(anchors: torch.Tensor, target_boxes: torch.Tensor, present: torch.Tensor,
                  positive_iou: float = 0.6, negative_iou: float = 0.3) -> torch.Tensor:
    """``float32 [N, A, R, R]``: 1 positive, 0 negative, -1 ignored.

    ``anchors`` ``[N, A, R, R, 4]``, ``target_boxes`` ``[N, 4]``, ``present``
    ``bool [N]``. A present instance whose best anchor is under
    ``positive_iou`` still gets that anchor as its positive when it reaches
    ``negative_iou``.
    """
    count = anchors.shape[0]
    iou = geometry.pairwise_box_iou(anchors, target_boxes[:, None, None, None, :])
    labels = torch.full_like(iou, -1.0)
    labels[iou < negative_iou] = 0.0
    labels[iou >= positive_iou] = 1.0
    flat_iou, flat_labels = iou.reshape(count, -1), labels.reshape(count, -1)
    best = flat_iou.argmax(1)
    rows = torch.arange(count)
    rescue = flat_iou[rows, best] >= negative_iou
    flat_labels[rows[rescue], best[rescue]] = 1.0
    flat_labels[~present] = 0.0
    return flat_labels.reshape(labels.shape)


def distractor_anchors(anchors: torch.Tensor, other_boxes: list[torch.Tensor], labels: torch.Tensor,
                       min_iou: float = 0.5) -> torch.Tensor:
    """``bool [N, A, R, R]``: negatives (label 0) whose anchor overlaps another instance's box (IoU >= ``min_iou``).

    ``other_boxes[n]`` ``[K_n, 4]``: the boxes of sample ``n``'s other instances in the target frame.
    """
    hard = torch.zeros_like(labels, dtype=torch.bool)
    for n, boxes in enumerate(other_boxes):
        if boxes.shape[0]:
            iou = geometry.pairwise_box_iou(anchors[n][..., None, :], boxes.to(anchors.device))  # [A, R, R, K]
            hard[n] = (iou >= min_iou).any(-1)
    return hard & (labels == 0.0)


def discriminator_loss(logits: torch.Tensor, labels: torch.Tensor, hard: torch.Tensor | None = None) -> torch.Tensor:
    """Balanced BCE: the means over positives, over negatives and over the ``hard`` negatives (each 0 when empty)."""
    loss = torch.zeros((), device=logits.device)
    groups = [labels == 1.0, labels == 0.0] + ([hard] if hard is not None else [])
    for chosen in groups:
        if chosen.any():
            loss = loss + F.binary_cross_entropy_with_logits(logits[chosen], labels[chosen])
    return loss


def box_loss(deltas: torch.Tensor, anchors: torch.Tensor, target_boxes: torch.Tensor,
             labels: torch.Tensor) -> torch.Tensor:
    """Smooth L1 between the positives' deltas and the encoded target box (0 without positives).

    ``deltas`` ``[N, 4A, R, R]`` (anchor-major, as the correlator outputs them).
    """
    count, num_anchors, response = labels.shape[0], labels.shape[1], labels.shape[-1]
    per_anchor = deltas.reshape(count, num_anchors, 4, response, response).permute(0, 1, 3, 4, 2)
    positive = labels == 1.0
    if not positive.any():
        return deltas.sum() * 0.0
    targets = geometry.encode_boxes(anchors, target_boxes[:, None, None, None, :].expand_as(anchors))
    return F.smooth_l1_loss(per_anchor[positive], targets[positive], beta=1.0 / 9)


def mask_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(BCE, soft IoU loss)`` of mask logits and ``{0, 1}`` targets, both ``[N, H, W]``.

    Soft IoU is ``1 - (sum p*g + 1) / (sum p + g - p*g + 1)`` per instance,
    averaged; the +1 keeps an empty target (absent instance) defined: it then
    pushes every probability down.
    """
    targets = targets.float()
    bce = F.binary_cross_entropy_with_logits(logits, targets)
    probs = torch.sigmoid(logits).flatten(1)
    flat = targets.flatten(1)
    intersection = (probs * flat).sum(1)
    union = (probs + flat - probs * flat).sum(1)
    soft_iou = 1 - (intersection + 1) / (union + 1)
    return bce, soft_iou.mean()
