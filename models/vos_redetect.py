"""Re-detection for VOS: the detector's proposals sharpen the masks of the objects being followed.

The pixel level's masks live on the stride-4 P2 grid; the detector's masks
are sharper. Where a proposal of the frame (any category: the prompted objects
need not be of the detector's classes) matches an object's propagated mask
(mask IoU above ``snap_iou``, one to one by the Hungarian method), the object
takes the proposal's mask probabilities for that frame, which also become its
previous mask for the next step. An object no proposal matches keeps its
propagated mask, so objects the detector does not know are followed as before.
"""

from __future__ import annotations

from typing import Callable

import torch
from scipy.optimize import linear_sum_assignment

# frame -> float [D, H, W] proposal mask probabilities (FeatureWindow.proposals: from the tracker's own detector pass)
ProposalSource = Callable[[int], torch.Tensor]


def snap_to_proposals(probs: torch.Tensor, proposals: torch.Tensor, threshold: float, snap_iou: float) -> torch.Tensor:
    """``probs`` ``float [N, H, W]`` with each object that matches a proposal given that proposal's probabilities.

    ``proposals`` ``float [D, H, W]``; an object's mask is ``probs > threshold``,
    a proposal's ``> 0.5``; pairs with mask IoU above ``snap_iou`` match, one to one.
    """
    if probs.shape[0] == 0 or proposals.shape[0] == 0:
        return probs
    ours = (probs > threshold).flatten(1).float()
    theirs = (proposals > 0.5).flatten(1).float()
    inter = ours @ theirs.T
    union = ours.sum(1)[:, None] + theirs.sum(1)[None, :] - inter
    iou = (inter / union.clamp(min=1)).numpy()
    snapped = probs.clone()
    for row, col in zip(*linear_sum_assignment(iou, maximize=True)):
        if iou[row, col] > snap_iou:
            snapped[row] = proposals[col]
    return snapped
