"""The rules this project adds to IPDT's tracking step, each a named gate, in the order the propagator applies them.

The paper's step (:meth:`.propagation.Propagator.step`) predicts, for every
instance followed into a frame, a box, a mask and a confidence, and loses the
instance in that frame where the confidence is below ``min_confidence``.
Each instance's frame then passes these gates, in this order
(:meth:`.propagation.Propagator._advance`):

1. **snap** (``snap_iou``; :func:`snap_overlaps`, :func:`snap_pairs`): a
   prediction overlapping a proposal of the frame takes the proposal's mask,
   box and score, and the frame is *confirmed*. With ``max_colour_distance``,
   a proposal of another colour than the seed's (:func:`other_colour`) takes
   no part.
2. **holder** (``switch_iou``, backward sweep only; :class:`HolderCheck`): a
   snap to a proposal that a tubelet of another object holds stops the
   direction instead, and its unconfirmed frames are dropped.
3. **fill** (no snap): the heads' prediction fills the frame when the paper's
   confidence rule keeps it, the mask is not an occluded remnant
   (:func:`is_remnant`, ``MIN_AREA_RATIO``) and, with ``check_fill_colour``,
   it is not of another colour than the seed's (:func:`other_colour`);
   otherwise the instance is lost in this frame.
4. **guard** (``max_unconfirmed``, at frames the detector ran on;
   :func:`unconfirmed_too_long`): a direction no proposal confirmed for too
   long stops, and the frames it filled since the last confirmation are dropped.
5. **lost** (``max_lost``; :func:`lost_too_long`): a direction lost for too
   many consecutive frames stops.

The order matters where two gates meet one frame: the holder check judges
only a snap (1 before 2); the guard counts the frame whatever 1-3 made of it,
and an instance it stops is not judged by 5. Relinking a stopped forward
extension to a new instance is not a per-frame gate: :mod:`.relinking`. A
benchmark may take what the guard does, and what a kept fill records, from the
truth instead (:mod:`.oracle`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from tubelets import masks
from tubelets.masks import JsonRle
from tubelets.models.ipdt import appearance
from tubelets.records import TubeletFrame

if TYPE_CHECKING:
    from tubelets.models.ipdt.propagation import Instance

# A predicted mask smaller than this share of the instance's last mask is an occluded remnant, not the object
# (objects shrink by leaving the frame or the camera, a few per cent a frame, never to a tenth in one step).
MIN_AREA_RATIO = 0.1


def snap_overlaps(predicted: Sequence[JsonRle], moved: Sequence[JsonRle], proposals: Sequence[JsonRle]) -> np.ndarray:
    """Gate 1's cue: ``[N, D]`` each prediction's mask IoU with each proposal, or its moved last mask's if larger.

    The moved mask is the ``iou`` linker's cue: it keeps a fast-moving
    instance on its proposals when the heads' prediction lags behind it.
    """
    return np.maximum(masks.iou_matrix(list(predicted), list(proposals)),
                      masks.iou_matrix(list(moved), list(proposals)))


def snap_pairs(overlaps: np.ndarray, snap_iou: float) -> dict[int, int]:
    """Gate 1: ``{prediction: proposal}``, each pair overlapping more than ``snap_iou``, one to one (Hungarian).

    A snap takes the detector's mask, box and score: that mask is sharper than
    the heads' stride-4 one, and taking it re-anchors an instance that drifted a little.
    """
    gated = np.where(overlaps > snap_iou, overlaps, 0.0)
    rows, cols = linear_sum_assignment(gated, maximize=True)
    return {n: d for n, d in zip(rows.tolist(), cols.tolist()) if overlaps[n, d] > snap_iou}


def other_colour(references: np.ndarray, candidates: np.ndarray, max_colour_distance: float) -> np.ndarray:
    """Gates 1 and 3: ``bool [N, D]``, candidate ``d``'s colour is further than ``max_colour_distance`` from ``n``'s.

    The discriminator hardly tells an instance from a neighbour it touches;
    the mean colour does (:mod:`.appearance`). A NaN distance (an empty mask)
    is False: nothing says the two differ.
    """
    return appearance.colour_distances(references, candidates) > max_colour_distance


def is_remnant(area: int, last_area: float | None) -> bool:
    """Gate 3: a mask of ``area`` pixels is no object when empty or below ``MIN_AREA_RATIO`` of ``last_area``.

    An object going behind an occluder leaves a few pixels at the occluder's
    edge that the pixel level still holds confidently; that sliver is not the
    object. ``last_area`` is None where the mask cannot be a remnant: the
    instance level's mask is the last one moved into the new box.
    """
    return area <= 0 or (last_area is not None and area < MIN_AREA_RATIO * last_area)


def unconfirmed_too_long(since_confirmed: int, max_unconfirmed: int | None) -> bool:
    """Gate 4: a direction no proposal confirmed for more than ``max_unconfirmed`` steps stops (None: never).

    The heads stay confident on a look-alike the search drifted onto, so the
    detector is the check: a tail it never confirmed is more likely drift than
    an object the detector missed that long. The caller drops the tail.
    """
    return max_unconfirmed is not None and since_confirmed > max_unconfirmed


def lost_too_long(lost: int, max_lost: int) -> bool:
    """Gate 5: a direction lost in more than ``max_lost`` consecutive frames stops.

    While lost the search goes on around the motion-extrapolated position;
    past ``max_lost`` frames that position says little, and what the search
    finds there is more likely another object.
    """
    return lost > max_lost


class HolderCheck:
    """Gate 2 (backward sweep): whether a proposal an extension would take is held by a tubelet of another object.

    In the backward sweep the tubelets that already hold a frame take no part
    in its assignment, so an extension whose object is hidden there would take
    the proposal of the object hiding it. A holder whose mask overlaps the
    proposal (IoU > ``cover_iou``) is the same object as the extension only if
    their tubelets overlapped since the extension's seed (mean mask IoU over
    the frames both hold, at least ``switch_iou``): an object re-proposed after
    its tubelet lost it is one, an object that came out from behind the
    holder's is not. With no shared frame nothing says they differ; with
    ``switch_iou`` None the check is off.

    One check serves one video at a time (:meth:`start_video`): which pairs
    were apart is cached, since in the backward sweep neither tubelet gains a
    frame after the extension's seed.
    """

    def __init__(self, switch_iou: float | None, cover_iou: float | None):
        self.switch_iou, self.cover_iou = switch_iou, cover_iou
        self._apart: dict[tuple[int, int], bool] = {}  # (serial, serial) -> tubelets apart since the first's seed

    def start_video(self) -> None:
        self._apart = {}

    def taken_from_another_object(self, instance: Instance, proposal: TubeletFrame,
                                  holders: Sequence[Instance]) -> bool:
        """Whether ``proposal``, which ``instance`` would take, is held by a tubelet of another object."""
        if self.switch_iou is None:
            return False
        for holder in holders:
            if holder is instance:
                continue
            held = holder.frames[proposal.frame].mask
            if masks.iou_matrix([proposal.mask], [held])[0, 0] > self.cover_iou and self.apart(instance, holder):
                return True
        return False

    def apart(self, instance: Instance, holder: Instance) -> bool:
        """Whether the two tubelets' mean mask IoU over the frames both hold since ``instance``'s seed is below
        ``switch_iou``."""
        key = (instance.serial, holder.serial)
        if key not in self._apart:
            shared = [f for f in instance.frames if f >= instance.seed_frame and f in holder.frames]
            ious = [masks.iou_matrix([instance.frames[f].mask], [holder.frames[f].mask])[0, 0] for f in shared]
            self._apart[key] = bool(shared) and float(np.mean(ious)) < self.switch_iou
        return self._apart[key]
