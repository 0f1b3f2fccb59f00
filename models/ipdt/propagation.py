"""Extending reference instances into tubelets, forward and backward, all instances of a frame at once.

One video is handled in two sweeps (so that every frame's heads run once per
sweep for every instance being followed, instead of once per instance):

1. **forward** (frame 0 -> T-1): the active instances are propagated into the
   frame in one batched step; then the frame's proposals, in descending
   calibrated score, start new instances unless a propagated mask already
   covers them (mask IoU > ``cover_iou``);
2. **backward** (T-1 -> 0): each instance started after frame 0 is extended
   from its reference frame towards the start, again batched per frame.

A step (:meth:`Propagator.step`) predicts each instance's box (instance
level), mask (pixel level) and a confidence. Below ``min_confidence`` the
instance is *lost* in that frame (no mask there); it keeps being searched for
around its motion-extrapolated position and resumes when found, and its
direction stops after ``max_lost`` consecutive lost frames. A prediction that
overlaps a proposal of the frame (mask IoU > ``snap_iou``) takes the
proposal's mask, box and score and votes with its class: the detector's mask
is sharper than the stride-4 one, and the snap re-anchors the instance (see
:meth:`Propagator._snap` for the matching rule). A direction that no proposal
has confirmed for ``max_unconfirmed`` steps stops, and the frames it filled
since the last confirmation are dropped: the heads stay confident on a
look-alike they drifted onto, so the detector is the check against drift.
With ``proposals.detect_every`` it stops at the next frame the detector ran
on, which may yet confirm it.
With ``max_colour_distance`` set, the instance level also checks a
proposal's identity by colour before a snap (:mod:`.appearance`): the
discriminator cannot tell an instance from a neighbour it touches; a frame
the heads fill is checked the same way with ``check_fill_colour``, and
lost when its mask is of another colour. With
``relink_frames`` too, a forward extension that stopped continues as a new
instance of its colour started in its search window soon after (one
tubelet candidate). These identity checks are :mod:`.identity`'s.
In the backward sweep the tubelets that already hold a frame take no part in
its assignment, so an extension whose object is hidden there would take the
proposal of the object hiding it; a proposal another tubelet holds, when the
two tubelets were apart from the extension's seed on, stops the direction
instead (see :meth:`.identity.IdentityCheck.taken_from_another_object`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from tubelets import masks
from tubelets.models.ipdt import geometry
from tubelets.models.ipdt.identity import IdentityCheck, ImageSource
from tubelets.models.ipdt.model import IPDT, FrameEncoding
from tubelets.models.ipdt.pixel import reference_vectors
from tubelets.models.ipdt.siamese import best_proposals
from tubelets.models.tubelet_merge import TubeletCandidate
from tubelets.records import FrameDetections, TubeletFrame, VideoProposals

EncodingSource = Callable[[int], FrameEncoding]

# A predicted mask smaller than this share of the instance's last mask is an occluded remnant, not the object
# (objects shrink by leaving the frame or the camera, a few per cent a frame, never to a tenth in one step).
MIN_AREA_RATIO = 0.1


@dataclasses.dataclass(frozen=True)
class PropagationSettings:
    """How the tracker uses the heads; ``levels`` picks the tracker variant."""

    use_instance: bool = True  # Siamese box + discriminator
    use_pixel: bool = True  # FEELVOS mask
    min_confidence: float = 0.5  # below: lost in this frame
    max_lost: int = 6  # consecutive lost frames before a direction stops
    mask_threshold: float = 0.5  # on mask probabilities
    box_margin: float = 1.15  # the mask is cut to the refined box grown by this factor
    window_influence: float = 0.2  # Siamese cosine window (motion prior)
    snap_iou: float = 0.3  # a prediction (or motion-moved last mask) overlapping a proposal more takes it
    cover_iou: float = 0.5  # a proposal overlapping a prediction more starts nothing
    # Steps with no proposal confirming before a direction stops, at the next frame the detector ran on (None: off).
    max_unconfirmed: int | None = None
    # Backward: a held proposal is another object's when the two tubelets' mean mask IoU since the seed is below.
    switch_iou: float | None = None  # (None: backward extensions may take any proposal)
    # Both levels: confidence = their geometric mean (lost when either is low), not the larger of the two.
    either_level_loses: bool = False
    # Instance level: a proposal whose mean colour is further than this from the seed's (in the standardised
    # frames of appearance.py) is another object and confirms nothing (None: no colour check).
    max_colour_distance: float | None = None
    # Instance level, with the colour check: a forward extension that stopped at most this many frames before a
    # new instance's proposal continues as that instance when the two are one object (None: off; Propagator._relink).
    relink_frames: int | None = None
    # With the colour check: a frame the heads fill whose mask is further than max_colour_distance from the seed's
    # colour is lost there (off: the colour check is at snaps and relinks only).
    check_fill_colour: bool = False

    @property
    def checks_colour(self) -> bool:
        return self.use_instance and self.max_colour_distance is not None


@dataclasses.dataclass(eq=False)
class Instance:
    """One reference instance being extended; ``box``/``mask``/``velocity`` are the current direction's state."""

    serial: int
    seed_frame: int
    seed: TubeletFrame
    template: torch.Tensor  # [C, T, T]
    reference: tuple[torch.Tensor, torch.Tensor]  # ([K, D] vectors, [K] valid)
    labels: list[int]
    scores: list[float]
    colour: np.ndarray | None = None  # [3] the seed's mean colour (appearance.mask_colours), with the colour check
    frames: dict[int, TubeletFrame] = dataclasses.field(default_factory=dict)
    box: torch.Tensor = None  # [4] frame pixels
    mask: torch.Tensor = None  # float [H, W], 0/1
    velocity: torch.Tensor = None  # [2] pixels per step of the current direction
    lost: int = 0
    unconfirmed: list[int] = dataclasses.field(default_factory=list)  # frames filled since a proposal last confirmed it
    since_confirmed: int = 0  # steps since a proposal last confirmed it (found or lost)

    def reset(self) -> None:
        """Back to the reference instance, for the other direction."""
        self.box = torch.as_tensor(self.seed.box, dtype=torch.float32)
        self.mask = torch.from_numpy(masks.decode(self.seed.mask).astype(np.float32))
        self.velocity = torch.zeros(2)
        self.lost = 0
        self.unconfirmed, self.since_confirmed = [], 0


@dataclasses.dataclass
class StepResult:
    """Predictions of one step for ``N`` instances (frame pixels)."""

    boxes: torch.Tensor  # [N, 4]
    masks: torch.Tensor  # bool [N, H, W]
    confidence: torch.Tensor  # [N] in [0, 1]
    moved: torch.Tensor  # bool [N, H, W]: the last masks moved by the motion prediction
    probs: torch.Tensor | None = None  # float [N, H, W] mask probabilities (pixel level only; None without it)
    colours: np.ndarray | None = None  # [N, 3] the masks' colours (appearance.mask_colours), once a fill needs them
    rles: list | None = None  # the masks as RLEs (see encoded_masks)

    def encoded_masks(self) -> list:
        """``masks`` as RLEs, encoded once per step: the snap, the colour check and the filled frames read them."""
        if self.rles is None:
            self.rles = encode_masks(self.masks)
        return self.rles


class Propagator:
    """Runs the two sweeps of one video (see the module docstring)."""

    def __init__(self, model: IPDT, settings: PropagationSettings):
        if not (settings.use_instance or settings.use_pixel):
            raise ValueError("a tracker needs the instance level, the pixel level or both")
        self.model, self.settings = model, settings
        self.identity = IdentityCheck(settings, model.config)
        # The heads run on the model's device; the per-instance state (boxes, masks, velocities) stays on the CPU.
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def run(self, proposals: VideoProposals, encodings: EncodingSource,
            images: ImageSource | None = None) -> list[TubeletCandidate]:
        """Every instance's tubelet candidate (before merging), in creation order.

        ``images`` (the RGB frames) is needed with the colour check only.
        """
        instances: list[Instance] = []
        self.identity.start_video(images)
        links: dict[int, int] = {}  # serial of a relinked instance -> serial of the one it continues
        self._sweep_forward(proposals, encodings, instances, links)
        self._sweep_backward(proposals, encodings, instances)
        return chained_candidates(instances, links)

    def _sweep_forward(self, proposals: VideoProposals, encodings: EncodingSource, instances: list[Instance],
                       links: dict[int, int]) -> None:
        active: list[Instance] = []
        stopped: list[Instance] = []  # forward extensions that stopped, while a relink may still continue them
        recent: list[Instance] = []  # instances started up to relink_frames ago that continue none yet
        relink = self.settings.relink_frames if self.settings.checks_colour else None
        for detections in proposals.frames:
            frame = detections.frame
            halted: list[Instance] = []
            if active:
                alive = self._advance(active, frame, frame - 1, detections, encodings)
                halted = [i for i in active if i not in alive]
                active = alive
            started = self._start(detections, [i for i in instances if frame in i.frames], encodings, len(instances))
            instances.extend(started)
            active.extend(started)
            if relink is None or not (started or halted):
                continue
            # An extension that drifted stops only after its unconfirmed tail, so its object's next instance may
            # have started before it stopped: pair the instances started up to relink_frames ago with the
            # extensions whose last kept frame is close enough before one of them.
            recent = [i for i in recent + started if frame - i.seed_frame <= relink]
            stopped = [i for i in stopped + halted if max(i.frames) + 1 + relink >= frame - relink]
            links.update(self.identity.relinks(recent, stopped))
            recent = [i for i in recent if i.serial not in links]
            stopped = [i for i in stopped if i.serial not in links.values()]

    def _sweep_backward(self, proposals: VideoProposals, encodings: EncodingSource, instances: list[Instance]) -> None:
        by_seed: dict[int, list[Instance]] = {}
        for instance in instances:
            by_seed.setdefault(instance.seed_frame, []).append(instance)
        active: list[Instance] = []
        for detections in reversed(proposals.frames[:-1]):
            frame = detections.frame
            joining = by_seed.get(frame + 1, [])
            for instance in joining:
                instance.reset()
            active = active + joining
            if active:
                holders = [instance for instance in instances if frame in instance.frames]
                active = self._advance(active, frame, frame + 1, detections, encodings, holders)

    def _advance(self, active: list[Instance], frame: int, previous: int, detections: FrameDetections,
                 encodings: EncodingSource, holders: Sequence[Instance] = ()) -> list[Instance]:
        """Propagate ``active`` into ``frame``; returns the instances still followed.

        ``holders``: instances that already hold ``frame`` (backward sweep).
        """
        result = self.step(active, encodings(frame), encodings(previous))
        colours = np.stack([instance.colour for instance in active]) if self.settings.checks_colour else None
        snapped = self._snap(result, detections, colours)
        alive = []
        for n, instance in enumerate(active):
            instance.since_confirmed += 1
            if n in snapped and self.identity.taken_from_another_object(instance, snapped[n][0], holders):
                self._drop_unconfirmed(instance)
                continue
            if n in snapped:
                item, label = snapped[n]
                instance.labels.append(label)
                instance.scores.append(item.score)
                self.found(instance, frame, item, torch.from_numpy(masks.decode(item.mask).astype(np.float32)))
                instance.unconfirmed, instance.since_confirmed = [], 0
            elif (self._found_by_heads(result, n, instance)
                  and self.identity.keeps_seed_colour(result, n, instance, frame)):
                score = instance.seed.score * float(result.confidence[n])
                item = TubeletFrame(frame, result.encoded_masks()[n], result.boxes[n].numpy().astype(np.float32), score)
                self.found(instance, frame, item, result.masks[n].float())
                instance.unconfirmed.append(frame)
            else:
                instance.lost += 1  # the search goes on around the extrapolated position (see step)
            # The guard judges where the detector looked: a frame it skipped could not have confirmed anything.
            if detections.detected and self._unconfirmed_too_long(instance):
                continue
            if instance.lost <= self.settings.max_lost:
                alive.append(instance)
        return alive

    def _found_by_heads(self, result: StepResult, n: int, instance: Instance) -> bool:
        """Whether prediction ``n`` (no proposal confirming it) is the object: confident, and not a sliver of it.

        An object going behind an occluder leaves a few pixels at the
        occluder's edge that the pixel level still holds confidently; a mask
        that shrank in one step below ``MIN_AREA_RATIO`` of the last one is
        such a remnant, so the instance is lost there rather than found. (The
        instance level's mask is the last one moved into the box, so it
        cannot be a remnant.)
        """
        area = int(result.masks[n].sum())
        smallest = MIN_AREA_RATIO * float(instance.mask.sum()) if self.settings.use_pixel else 0.0
        return float(result.confidence[n]) >= self.settings.min_confidence and area > 0 and area >= smallest

    def _unconfirmed_too_long(self, instance: Instance) -> bool:
        """Stop a direction no proposal has confirmed for ``max_unconfirmed`` steps, dropping its unconfirmed tail.

        The heads' confidence stays high on a look-alike the search drifted
        onto, so the detector is the check: a tail it never confirmed is
        more likely drift than an object the detector missed that long.
        """
        limit = self.settings.max_unconfirmed
        if limit is None or instance.since_confirmed <= limit:
            return False
        self._drop_unconfirmed(instance)
        return True

    @staticmethod
    def _drop_unconfirmed(instance: Instance) -> None:
        for frame in instance.unconfirmed:
            del instance.frames[frame]
        instance.unconfirmed = []

    @staticmethod
    def found(instance: Instance, frame: int, item: TubeletFrame, mask: torch.Tensor) -> None:
        """``instance`` is at ``item`` in ``frame`` (its ``mask`` float ``[H, W]``): record it, update box and
        velocity."""
        box = torch.as_tensor(item.box, dtype=torch.float32)
        shift = (geometry.box_centres_sizes(box[None])[0] - geometry.box_centres_sizes(instance.box[None])[0])[0]
        # A smoothed velocity: one noisy step should not throw the next search window off.
        instance.velocity = 0.5 * instance.velocity + 0.5 * shift / (instance.lost + 1)
        instance.box, instance.mask, instance.lost = box, mask, 0
        instance.frames[frame] = item

    def _snap(self, result: StepResult, detections: FrameDetections,
              colours: np.ndarray | None = None) -> dict[int, tuple[TubeletFrame, int]]:
        """``{instance index: (proposal as a TubeletFrame, its label)}`` for instances a proposal confirms.

        An instance and a proposal match when the proposal overlaps (mask IoU >
        ``snap_iou``) the instance's prediction or its motion-moved last mask
        (the ``iou`` linker's cue: it keeps a fast-moving instance on its
        proposals when a prediction drifts) and, given the instances' seed
        ``colours`` ``[N, 3]``, its colour is within ``max_colour_distance``
        of the instance's; pairs are assigned one to one, by the Hungarian
        method on that overlap.
        """
        if not len(detections) or result.masks.shape[0] == 0:
            return {}
        overlaps = np.maximum(masks.iou_matrix(result.encoded_masks(), detections.masks),
                              masks.iou_matrix(encode_masks(result.moved), detections.masks))
        if colours is not None:
            candidates = self.identity.proposal_colours(detections)
            overlaps[self.identity.other_colour(colours, candidates)] = 0.0
        gated = np.where(overlaps > self.settings.snap_iou, overlaps, 0.0)
        rows, cols = linear_sum_assignment(gated, maximize=True)
        snapped = {}
        for n, best in zip(rows.tolist(), cols.tolist()):
            if overlaps[n, best] > self.settings.snap_iou:
                item = TubeletFrame(detections.frame, detections.masks[best],
                                    np.asarray(detections.boxes[best], np.float32), float(detections.scores[best]))
                snapped[n] = (item, int(detections.labels[best]))
        return snapped

    def _start(self, detections: FrameDetections, present: list[Instance], encodings: EncodingSource,
               first_serial: int) -> list[Instance]:
        """New instances from the frame's proposals no present instance covers, best score first."""
        frame = detections.frame
        order = np.argsort(-np.asarray(detections.scores), kind="stable")
        taken = [i.frames[frame].mask for i in present]
        chosen = []
        for index in order:
            if taken and masks.iou_matrix([detections.masks[index]], taken).max() > self.settings.cover_iou:
                continue
            chosen.append(int(index))
            taken.append(detections.masks[index])
        if not chosen:
            return []
        colours = self.identity.proposal_colours(detections)[chosen] if self.settings.checks_colour else None
        return self.make_instances(detections.select(np.asarray(chosen)), encodings(frame), first_serial, colours)

    def make_instances(self, detections: FrameDetections, encoding: FrameEncoding, first_serial: int,
                       colours: np.ndarray | None = None) -> list[Instance]:
        """Templates and reference embeddings of the chosen proposals, all in one batch.

        ``colours`` ``[D, 3]``: their colours when the caller has them (the colour check computes them otherwise).
        """
        count, device = len(detections), self.device
        boxes = torch.as_tensor(np.asarray(detections.boxes), dtype=torch.float32)
        frame_masks = torch.from_numpy(np.stack([masks.decode(m) for m in detections.masks]).astype(np.float32))
        zeros = torch.zeros(count, dtype=torch.long, device=device)
        templates = self.model.templates(encoding, boxes.to(device), zeros)
        coverage = geometry.masks_to_p2(frame_masks.to(device), encoding.scale, encoding.p2_size)
        vectors, valid = reference_vectors(encoding.embedding.expand(count, -1, -1, -1), coverage,
                                           self.model.config.reference_pixels)
        if self.settings.checks_colour and colours is None:
            colours = self.identity.colours(detections.frame, detections.masks)
        instances = []
        for n in range(count):
            seed = TubeletFrame(detections.frame, detections.masks[n], boxes[n].numpy(), float(detections.scores[n]))
            colour = None if colours is None else colours[n]
            instance = Instance(first_serial + n, detections.frame, seed, templates[n], (vectors[n], valid[n]),
                                [int(detections.labels[n])], [seed.score], colour, {detections.frame: seed})
            instance.reset()
            instances.append(instance)
        return instances

    def step(self, instances: list[Instance], current: FrameEncoding, previous: FrameEncoding) -> StepResult:
        """One batched step of every instance into ``current`` (``previous``: one frame back in this direction)."""
        settings, count = self.settings, len(instances)
        zeros = torch.zeros(count, dtype=torch.long, device=self.device)
        last_boxes = torch.stack([i.box for i in instances])
        last_masks = [i.mask for i in instances]
        # Constant-velocity prediction from the last frame the instance was found in.
        steps = torch.tensor([i.lost + 1 for i in instances], dtype=torch.float32)[:, None]
        predicted = geometry.shift_boxes(last_boxes, torch.stack([i.velocity for i in instances]) * steps)
        boxes, confidence = predicted, torch.ones(count)
        if settings.use_instance:
            templates = torch.stack([i.template for i in instances])
            logits, deltas, anchors = self.model.track_instances(current, zeros, templates, predicted.to(self.device))
            boxes, confidence = best_proposals(logits, deltas, anchors, settings.window_influence)
            boxes, confidence = geometry.clip_boxes(boxes, *current.frame_size).cpu(), confidence.cpu()
        # The last mask moved with the motion prediction: after a few lost frames the object is no longer
        # where it was last seen, and local matching only looks a few cells around the previous mask.
        moved = geometry.warp_masks(last_masks, last_boxes, predicted, stride=1.0)
        probs = None
        if settings.use_pixel:
            probs, mask_confidence = self._segment(instances, current, previous, moved)
            frame_masks = probs > settings.mask_threshold
            if settings.use_instance:
                geometry.cut_to_boxes(frame_masks, geometry.scale_boxes(boxes, settings.box_margin))
                if settings.either_level_loses:
                    confidence = torch.sqrt(confidence * mask_confidence)
                else:
                    # Lost only when both levels lose it: the discriminator doubts a blurred or turning object
                    # the mask still holds, and the mask fades on an occluded one the box still finds.
                    confidence = torch.maximum(confidence, mask_confidence)
            else:
                boxes, _ = geometry.mask_boxes(frame_masks)
                confidence = mask_confidence
        else:
            frame_masks = geometry.warp_masks(last_masks, last_boxes, boxes, stride=1.0) > 0.5
        return StepResult(boxes, frame_masks, confidence, moved > 0.5, probs)

    def _segment(self, instances: list[Instance], current: FrameEncoding, previous: FrameEncoding,
                 last_masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask probabilities ``[N, H, W]`` and mask confidences ``[N]`` (mean probability of the predicted mask)."""
        count = len(instances)
        zeros = torch.zeros(count, dtype=torch.long, device=self.device)
        previous_masks = geometry.masks_to_p2(last_masks.to(self.device), current.scale, current.p2_size)
        vectors = torch.stack([pad_rows(i.reference[0], self.model.config.reference_pixels) for i in instances])
        valid = torch.stack([pad_rows(i.reference[1], self.model.config.reference_pixels) for i in instances])
        logits = self.model.segment_instances(current, previous, zeros, (vectors, valid), previous_masks)
        p2_probs = torch.sigmoid(logits)
        foreground = p2_probs > self.settings.mask_threshold
        mask_confidence = (p2_probs * foreground).flatten(1).sum(1) / foreground.flatten(1).sum(1).clamp(min=1)
        probs = torch.sigmoid(geometry.p2_to_frame(logits, current.scale, current.frame_size))
        return probs.cpu(), mask_confidence.cpu()


def chained_candidates(instances: list[Instance], links: dict[int, int]) -> list[TubeletCandidate]:
    """One candidate per chain of relinked instances (the others as they are), in creation order.

    A frame two members of a chain hold (a relinked instance's backward
    extension reaching back into the one it continues) keeps the earlier member's.
    """
    chains: dict[int, list[Instance]] = {}
    for instance in instances:
        head = instance.serial
        while head in links:
            head = links[head]
        chains.setdefault(head, []).append(instance)
    candidates = []
    for head in sorted(chains):
        members = sorted(chains[head], key=lambda i: i.serial)
        frames: dict[int, TubeletFrame] = {}
        for member in members:
            for number, item in member.frames.items():
                frames.setdefault(number, item)
        candidates.append(TubeletCandidate(frames, [label for m in members for label in m.labels],
                                           [score for m in members for score in m.scores]))
    return candidates


def encode_masks(predicted: torch.Tensor) -> list:
    """``bool [N, H, W]`` masks as RLEs."""
    return [masks.encode(m.numpy().astype(np.uint8)) for m in predicted]


def pad_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """``tensor`` ``[K, ...]`` zero-padded (or cut) to ``rows`` rows."""
    if tensor.shape[0] >= rows:
        return tensor[:rows]
    padding = tensor.new_zeros((rows - tensor.shape[0], *tensor.shape[1:]))
    return torch.cat([tensor, padding])
