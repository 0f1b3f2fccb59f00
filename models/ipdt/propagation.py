"""Extending reference instances into tubelets, forward and backward, all instances of a frame at once.

One video is handled in two sweeps (so that every frame's heads run once per
sweep for every instance being followed, instead of once per instance):

1. **forward** (frame 0 -> T-1): the active instances are propagated into the
   frame in one batched step; then the frame's proposals, in descending
   calibrated score, start new instances unless a propagated mask already
   covers them (mask IoU > ``cover_iou``);
2. **backward** (T-1 -> 0): each instance started after frame 0 is extended
   from its reference frame towards the start, again batched per frame.

Propagating the active instances into a frame (:meth:`Propagator._advance`) is
the paper's step (:meth:`Propagator.step`: the instance level's box and
confidence, the pixel level's mask, the mask cut to the box; an instance
below ``min_confidence`` is lost in that frame, searched for around its
motion-extrapolated position), then this project's rules, each a named gate
of :mod:`.gates` applied in the order its docstring gives: snapping to a
proposal, the holder check (backward), the remnant and colour checks of a
fill, the unconfirmed guard, ``max_lost``. In the forward sweep a stopped
extension may then be relinked to a new instance of its object
(:mod:`.relinking`). A benchmark may take the guard's, the fills' and the
relinks' decisions from the truth (:mod:`.oracle`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch

from tubelets import masks
from tubelets.models.ipdt import gates, geometry
from tubelets.models.ipdt import oracle as oracles
from tubelets.models.ipdt.appearance import ImageSource, VideoColours
from tubelets.models.ipdt.model import IPDT, FrameEncoding
from tubelets.models.ipdt.pixel import reference_vectors
from tubelets.models.ipdt.relinking import Relinker, RelinkRule
from tubelets.models.ipdt.siamese import best_proposals
from tubelets.models.tubelet_merge import TubeletCandidate
from tubelets.records import FrameDetections, TubeletFrame, VideoProposals

EncodingSource = Callable[[int], FrameEncoding]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PropagationSettings:
    """How the propagation uses the heads: the levels it runs and the settings they read.

    No setting has a default here: ``configs/default.yaml`` is their one home
    (the ``tracker.<name>`` sections; VOS gives its own). A setting that only
    one level reads (``PIXEL_LEVEL``, ``INSTANCE_LEVEL``, ``BOTH_LEVELS``) is
    None when that level is off (:meth:`unread_by`); the trackers take
    exactly the settings their levels read.
    """

    use_instance: bool  # Siamese box + discriminator
    use_pixel: bool  # FEELVOS mask
    min_confidence: float  # below: lost in this frame
    max_lost: int  # consecutive lost frames before a direction stops
    # The sweeps of run read these four; None for a caller that steps instances itself (VOS) and, for the last
    # two, where the rule is off.
    snap_iou: float | None  # a prediction (or motion-moved last mask) overlapping a proposal more takes it
    cover_iou: float | None  # a proposal overlapping a prediction more starts nothing
    # Steps with no proposal confirming before a direction stops, at the next frame the detector ran on (None: off).
    max_unconfirmed: int | None
    # Backward: a held proposal is another object's when the two tubelets' mean mask IoU since the seed is below.
    switch_iou: float | None  # (None: backward extensions may take any proposal)
    # Pixel level.
    mask_threshold: float | None  # on mask probabilities
    # Instance level.
    window_influence: float | None  # Siamese cosine window (motion prior)
    # A proposal whose mean colour is further than this from the seed's (in the standardised frames of
    # appearance.py) is another object and confirms nothing (None: no colour check).
    max_colour_distance: float | None
    # With the colour check: a forward extension that stopped at most this many frames before a new instance's
    # proposal continues as that instance when the two are one object (None: off; relinking.RelinkRule).
    relink_frames: int | None
    # With the colour check: a frame the heads fill whose mask is further than max_colour_distance from the seed's
    # colour is lost there (off: the colour check is at snaps and relinks only).
    check_fill_colour: bool | None
    # Both levels.
    box_margin: float | None  # the pixel level's mask is cut to the refined box grown by this factor
    # Confidence = the levels' geometric mean (lost when either is low), not the larger of the two. Not a config
    # key: VOS sets it, the trackers do not.
    either_level_loses: bool = False

    # The settings only one level reads, or only the two together (no annotation: not fields).
    PIXEL_LEVEL = ("mask_threshold",)
    INSTANCE_LEVEL = ("window_influence", "max_colour_distance", "relink_frames", "check_fill_colour")
    BOTH_LEVELS = ("box_margin",)
    OFF_WHEN_NONE = ("max_colour_distance", "relink_frames")  # the others a level runs with must be given

    def __post_init__(self) -> None:
        unread = self.unread_by(self.use_instance, self.use_pixel)
        given = [name for name in unread if getattr(self, name) is not None]
        if given:
            raise ValueError(f"{given} are read by a level this propagation does not run: give None")
        levels = self.PIXEL_LEVEL + self.INSTANCE_LEVEL + self.BOTH_LEVELS
        needed = [name for name in levels if name not in unread + self.OFF_WHEN_NONE and getattr(self, name) is None]
        if needed:
            raise ValueError(f"{needed} are read by the levels this propagation runs: give them")

    @classmethod
    def unread_by(cls, use_instance: bool, use_pixel: bool) -> tuple[str, ...]:
        """The settings that a propagation running only these levels does not read."""
        return ((() if use_pixel else cls.PIXEL_LEVEL) + (() if use_instance else cls.INSTANCE_LEVEL)
                + (() if use_instance and use_pixel else cls.BOTH_LEVELS))

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
    box: torch.Tensor = None  # [4] frame pixels (CPU: the gates read it, and it is 16 bytes)
    mask: torch.Tensor = None  # float [H, W], 0/1, on the heads' device (the template's): see Propagator
    velocity: torch.Tensor = None  # [2] pixels per step of the current direction (CPU)
    lost: int = 0
    unconfirmed: list[int] = dataclasses.field(default_factory=list)  # frames filled since a proposal last confirmed it
    since_confirmed: int = 0  # steps since a proposal last confirmed it (found or lost)

    def reset(self) -> None:
        """Back to the reference instance, for the other direction."""
        self.box = torch.as_tensor(self.seed.box, dtype=torch.float32)
        self.mask = torch.from_numpy(masks.decode(self.seed.mask).astype(np.float32)).to(self.template.device)
        self.velocity = torch.zeros(2)
        self.lost = 0
        self.unconfirmed, self.since_confirmed = [], 0


@dataclasses.dataclass
class StepResult:
    """Predictions of one step for ``N`` instances (frame pixels).

    ``boxes`` and ``confidence`` are on the CPU; the frame-sized maps on the heads' device (see
    :class:`Propagator`), with one copy of the two masks to the CPU a step for what reads them there
    (:meth:`host_masks`).
    """

    boxes: torch.Tensor  # [N, 4]
    masks: torch.Tensor  # bool [N, H, W]
    confidence: torch.Tensor  # [N] in [0, 1]
    moved: torch.Tensor  # bool [N, H, W]: the last masks moved by the motion prediction
    probs: torch.Tensor | None = None  # float [N, H, W] mask probabilities (pixel level only; None without it)
    colours: np.ndarray | None = None  # [N, 3] the masks' colours (appearance.mask_colours), once a fill needs them
    rles: list | None = None  # the masks as RLEs (see encoded_masks)
    host: tuple[torch.Tensor, torch.Tensor] | None = None  # (masks, moved) on the CPU (see host_masks)

    def host_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(masks, moved)`` on the CPU, copied once a step, both in one transfer: the RLEs and areas need them."""
        if self.host is None:
            on_cpu = self.masks.device.type == "cpu"
            self.host = (self.masks, self.moved) if on_cpu else tuple(torch.stack([self.masks, self.moved]).cpu())
        return self.host

    def encoded_masks(self) -> list:
        """``masks`` as RLEs, encoded once per step: the snap, the colour check and the filled frames read them."""
        if self.rles is None:
            self.rles = encode_masks(self.host_masks()[0])
        return self.rles


class Snap(NamedTuple):
    """A proposal that confirms an instance's prediction (gate 1): the frame it records and its class vote."""

    item: TubeletFrame
    label: int


class Propagator:
    """Runs the two sweeps of one video (see the module docstring).

    ``oracle`` takes the decisions :mod:`.oracle` lets a benchmark take; None:
    the oracle of the enclosing :func:`.oracle.deciding` block, which outside
    any is the tracker's own rules.
    """

    def __init__(self, model: IPDT, settings: PropagationSettings, oracle: oracles.Oracle | None = None):
        if not (settings.use_instance or settings.use_pixel):
            raise ValueError("a tracker needs the instance level, the pixel level or both")
        self.model, self.settings = model, settings
        self.oracle = oracle if oracle is not None else oracles.current()
        self.colours = VideoColours()  # the colour checks' (gates 1 and 3, relinking)
        self.holders = gates.HolderCheck(settings.switch_iou, settings.cover_iou)  # gate 2
        # The heads run on the model's device, and the instances' masks, the motion warps and the mask x box cut
        # stay there from step to step; what crosses to the CPU a step is the boxes, the confidences and one copy
        # of the step's masks (StepResult.host_masks: the gates compare RLEs and record them in the tubelets).
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def run(self, proposals: VideoProposals, encodings: EncodingSource,
            images: ImageSource | None = None) -> list[TubeletCandidate]:
        """Every instance's tubelet candidate (before merging), relinked instances chained into one, in creation order.

        ``images`` (the RGB frames) is needed with the colour check only.
        """
        self.colours.start_video(images)
        self.holders.start_video()
        self.oracle.start_video(proposals)
        instances: list[Instance] = []
        relinker = Relinker(self._relink_rule(), self.oracle)
        self._sweep_forward(proposals, encodings, instances, relinker)
        self._sweep_backward(proposals, encodings, instances)
        return chained_candidates(instances, relinker.links)

    def _relink_rule(self) -> RelinkRule | None:
        """Relinking's rule; None where it is off (no ``relink_frames``, or no colour check to re-identify by)."""
        settings = self.settings
        if settings.relink_frames is None or not settings.checks_colour:
            return None
        return RelinkRule(settings.relink_frames, settings.max_colour_distance, self.model.config)

    def _sweep_forward(self, proposals: VideoProposals, encodings: EncodingSource, instances: list[Instance],
                       relinker: Relinker) -> None:
        active: list[Instance] = []
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
            relinker.after_frame(frame, started, halted)

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
        """Propagate ``active`` into ``frame``: the paper's step, then the gates of :mod:`.gates` in their order.

        Returns the instances whose direction goes on. ``holders``: instances
        that already hold ``frame`` (backward sweep).
        """
        predictions = self.step(active, encodings(frame), encodings(previous))
        snaps = self._snaps(active, predictions, detections)
        alive = []
        for n, instance in enumerate(active):
            if self._passes_gates(instance, predictions, n, snaps.get(n), detections, holders):
                alive.append(instance)
        return alive

    def _passes_gates(self, instance: Instance, predictions: StepResult, n: int, snap: Snap | None,
                      detections: FrameDetections, holders: Sequence[Instance]) -> bool:
        """Record what gates 1-3 make of prediction ``n`` in this frame; whether gates 2, 4 and 5 let it go on.

        ``snap``: the proposal gate 1 gave the instance, if any.
        """
        settings, frame = self.settings, detections.frame
        instance.since_confirmed += 1
        # Gate 2 (backward): a snap to a proposal that another object's tubelet holds stops the direction instead.
        if snap is not None and self.holders.taken_from_another_object(instance, snap.item, holders):
            self._stop(instance, instance.unconfirmed)
            return False
        filled = False
        if snap is not None:  # gate 1: a proposal confirms the prediction
            self._confirm(instance, snap, frame)
        elif self._found_by_heads(predictions, n, instance) and self._of_seed_colour(predictions, n, instance, frame):
            self._fill(instance, predictions, n, frame)  # gate 3 passed: the heads fill the frame
            filled = True
        else:
            instance.lost += 1  # lost in this frame; the search goes on around the extrapolated position (see step)
        # Gate 4 judges where the detector looked: a frame it skipped could not have confirmed anything.
        if detections.detected and gates.unconfirmed_too_long(instance.since_confirmed, settings.max_unconfirmed):
            decision = self.oracle.guard(instance)
            if decision.stops:
                self._stop(instance, decision.dropped)
                return False
        if filled:  # kept: the guard let the direction go on, and gate 5 passes a found instance
            instance.frames[frame] = self.oracle.kept_fill(instance, instance.frames[frame])
        return not gates.lost_too_long(instance.lost, settings.max_lost)  # gate 5

    def _snaps(self, active: list[Instance], predictions: StepResult, detections: FrameDetections) -> dict[int, Snap]:
        """Gate 1: ``{instance index: Snap}`` for the instances a proposal of the frame confirms.

        With the colour check, a proposal of another colour than an instance's
        seed cannot confirm it.
        """
        if not len(detections) or not active:
            return {}
        settings = self.settings
        overlaps = gates.snap_overlaps(predictions.encoded_masks(), encode_masks(predictions.host_masks()[1]),
                                       detections.masks)
        if settings.checks_colour:
            seeds = np.stack([instance.colour for instance in active])
            proposals = self.colours.of_proposals(detections)
            overlaps[gates.other_colour(seeds, proposals, settings.max_colour_distance)] = 0.0
        return {n: proposal_snap(detections, d) for n, d in gates.snap_pairs(overlaps, settings.snap_iou).items()}

    def _found_by_heads(self, result: StepResult, n: int, instance: Instance) -> bool:
        """Gate 3, without colour: prediction ``n`` is confident enough (the paper's rule) and no remnant.

        Only the pixel level's mask can be an occluded remnant: the instance
        level's is the last one moved into the box (:func:`.gates.is_remnant`).
        """
        last_area = float(instance.mask.sum()) if self.settings.use_pixel else None
        return (float(result.confidence[n]) >= self.settings.min_confidence
                and not gates.is_remnant(int(result.host_masks()[0][n].sum()), last_area))

    def _of_seed_colour(self, result: StepResult, n: int, instance: Instance, frame: int) -> bool:
        """Gate 3's colour check: prediction ``n`` in ``frame`` is not of another colour than the seed.

        Only with ``check_fill_colour``: a prediction that slid onto the
        background or onto an object of another colour is lost there rather
        than kept until the guard drops it.
        """
        settings = self.settings
        if not (settings.checks_colour and settings.check_fill_colour):
            return True
        if result.colours is None:  # every prediction's colour at once, the first time a fill needs one
            result.colours = self.colours.of_masks(frame, result.encoded_masks())
        seed, colour = instance.colour[None], result.colours[n][None]
        return not gates.other_colour(seed, colour, settings.max_colour_distance)[0, 0]

    def _confirm(self, instance: Instance, snap: Snap, frame: int) -> None:
        """The snapped proposal is the instance's frame: it votes with its class and score, and re-anchors the state."""
        instance.labels.append(snap.label)
        instance.scores.append(snap.item.score)
        self.found(instance, frame, snap.item, torch.from_numpy(masks.decode(snap.item.mask).astype(np.float32)))
        instance.unconfirmed, instance.since_confirmed = [], 0

    def _fill(self, instance: Instance, predictions: StepResult, n: int, frame: int) -> None:
        """The heads' prediction ``n`` fills the frame, scored as the seed's score times its confidence."""
        score = instance.seed.score * float(predictions.confidence[n])
        box = predictions.boxes[n].numpy().astype(np.float32)
        self.found(instance, frame, TubeletFrame(frame, predictions.encoded_masks()[n], box, score),
                   predictions.masks[n].float())
        instance.unconfirmed.append(frame)

    @staticmethod
    def _stop(instance: Instance, dropped: Sequence[int]) -> None:
        """End the instance's direction at this frame, taking the frames ``dropped`` out of its tubelet."""
        for frame in dropped:
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
        instance.box, instance.mask, instance.lost = box, mask.to(instance.template.device), 0
        instance.frames[frame] = item

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
        colours = self.colours.of_proposals(detections)[chosen] if self.settings.checks_colour else None
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
            colours = self.colours.of_masks(detections.frame, detections.masks)
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
        """The paper's tracking step: every instance into ``current`` in one batch (``previous``: one frame back).

        IPDT (*Dual Embedding Learning for Video Instance Segmentation*): the
        instance level (Siamese, searching around the box the instance's
        velocity predicts) gives each instance's box and the discriminator's
        confidence; the pixel level (FEELVOS-style global matching against the
        seed's reference pixels, local matching against the last mask, none
        after a lost frame) its mask; the mask is cut to the box grown by
        ``box_margin`` (mask x box), and the confidence is the larger of the
        two levels' (their geometric mean with ``either_level_loses``). One level alone gives its own: the
        pixel level boxes its mask; the instance level moves the last mask into
        its box. The caller loses an instance below ``min_confidence``.
        """
        settings = self.settings
        last_boxes = torch.stack([i.box for i in instances])
        last_masks = [i.mask for i in instances]
        # Constant-velocity prediction from the last frame the instance was found in.
        steps = torch.tensor([i.lost + 1 for i in instances], dtype=torch.float32)[:, None]
        predicted = geometry.shift_boxes(last_boxes, torch.stack([i.velocity for i in instances]) * steps)
        boxes, confidence = predicted, torch.ones(len(instances))
        if settings.use_instance:
            boxes, confidence = self._instance_level(instances, current, predicted)
        # The last mask moved with the motion prediction: after a few lost frames the object is no longer
        # where it was last seen. It is the snap's cue (gate 1) and the pixel head's location prior.
        moved = geometry.warp_masks(last_masks, last_boxes, predicted, stride=1.0)
        probs = None
        if settings.use_pixel:
            probs, mask_confidence = self._pixel_level(instances, current, previous, moved)
            frame_masks = probs > settings.mask_threshold
            if settings.use_instance:
                confidence = self._mask_times_box(frame_masks, boxes, confidence, mask_confidence)
            else:
                boxes, _ = geometry.mask_boxes(frame_masks)
                confidence = mask_confidence
        else:
            frame_masks = geometry.warp_masks(last_masks, last_boxes, boxes, stride=1.0) > 0.5
        return StepResult(boxes.cpu(), frame_masks, confidence, moved > 0.5, probs)

    def _instance_level(self, instances: list[Instance], current: FrameEncoding,
                        predicted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Siamese level: boxes ``[N, 4]`` (clipped to the frame) and discriminator confidences ``[N]``.

        The search is around the ``predicted`` boxes ``[N, 4]``.
        """
        zeros = torch.zeros(len(instances), dtype=torch.long, device=self.device)
        templates = torch.stack([i.template for i in instances])
        logits, deltas, anchors = self.model.track_instances(current, zeros, templates, predicted.to(self.device))
        boxes, confidence = best_proposals(logits, deltas, anchors, self.settings.window_influence)
        return geometry.clip_boxes(boxes, *current.frame_size).cpu(), confidence.cpu()

    def _pixel_level(self, instances: list[Instance], current: FrameEncoding, previous: FrameEncoding,
                     last_masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The FEELVOS level: mask probabilities ``[N, H, W]`` and mask confidences ``[N]`` (mean probability of the
        predicted mask)."""
        count = len(instances)
        zeros = torch.zeros(count, dtype=torch.long, device=self.device)
        previous_masks = geometry.masks_to_p2(last_masks.to(self.device), current.scale, current.p2_size)
        vectors = torch.stack([pad_rows(i.reference[0], self.model.config.reference_pixels) for i in instances])
        valid = torch.stack([pad_rows(i.reference[1], self.model.config.reference_pixels) for i in instances])
        # Local matching reads the previous frame's features under the mask. An instance lost in that frame has no
        # mask there: under its moved last mask the frame shows what hid it, and matching that would carry the
        # occluder on as the object. The moved mask stays the head's location prior, to find it again.
        found_last = torch.tensor([i.lost == 0 for i in instances], dtype=previous_masks.dtype, device=self.device)
        logits = self.model.segment_instances(current, previous, zeros, (vectors, valid), previous_masks,
                                              previous_masks * found_last[:, None, None])
        p2_probs = torch.sigmoid(logits)
        foreground = p2_probs > self.settings.mask_threshold
        mask_confidence = (p2_probs * foreground).flatten(1).sum(1) / foreground.flatten(1).sum(1).clamp(min=1)
        probs = torch.sigmoid(geometry.p2_to_frame(logits, current.scale, current.frame_size))
        return probs, mask_confidence.cpu()

    def _mask_times_box(self, frame_masks: torch.Tensor, boxes: torch.Tensor, box_confidence: torch.Tensor,
                        mask_confidence: torch.Tensor) -> torch.Tensor:
        """Both levels: cut ``frame_masks`` to ``boxes`` grown by ``box_margin`` (in place); the instances'
        confidences ``[N]``."""
        geometry.cut_to_boxes(frame_masks, geometry.scale_boxes(boxes, self.settings.box_margin))
        if self.settings.either_level_loses:
            return torch.sqrt(box_confidence * mask_confidence)
        # Lost only when both levels lose it: the discriminator doubts a blurred or turning object
        # the mask still holds, and the mask fades on an occluded one the box still finds.
        return torch.maximum(box_confidence, mask_confidence)


def proposal_snap(detections: FrameDetections, index: int) -> Snap:
    """Proposal ``index`` of a frame as the frame it gives the instance it snaps to, and its class."""
    item = TubeletFrame(detections.frame, detections.masks[index], np.asarray(detections.boxes[index], np.float32),
                        float(detections.scores[index]))
    return Snap(item, int(detections.labels[index]))


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
