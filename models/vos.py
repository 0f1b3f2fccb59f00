"""Semi-supervised video object segmentation (VOS) on the IPDT heads: prompted objects through one video.

A user marks each object once, with a mask or a click on one frame (an
:class:`~tubelets.records.ObjectPrompt`); :meth:`VosSegmenter.segment` gives
every object's mask in every frame where it is seen.

* **Prompts.** A mask is taken as it is; a click is first grown into a mask on
  its frame (:func:`~tubelets.models.ipdt.point.grow_from_points`). On its
  prompt frame an object's output is exactly that mask.
* **Two sweeps**, as in :mod:`~tubelets.models.ipdt.propagation`: forward from
  the earliest prompt frame to the last frame, backward from the latest prompt
  frame to frame 0; an object joins each sweep at its prompt frame. All the
  objects followed in a frame go through the heads in one batched step
  (:meth:`Propagator.step`).
* **The pixel level gives the masks**: FEELVOS global matching to the prompt's
  embeddings, local matching to the previous frame's mask, the previous mask,
  the dynamic head.
* **The instance level checks them**: an object's mask probabilities are cut to
  its refined Siamese box grown by ``box_margin``; its confidence is the
  geometric mean of the discriminator's and the mask's. Below
  ``min_confidence`` the object is lost in that frame and gets no pixel there,
  but it is still searched for and resumes when found: VOS never stops
  following an object. The search window follows the constant-velocity
  extrapolation for ``max_lost`` lost frames, then stays where that left it
  (further extrapolation mostly drifts off the frame).
* **Re-detection** (:mod:`~tubelets.models.vos_redetect`, ``snap_iou``): where
  one of the detector's proposals of the frame (any category) matches an
  object's mask, the object takes the proposal's sharper mask.
* **One object per pixel** (the DAVIS convention): in each frame a pixel goes
  to the most probable object among those above ``mask_threshold``, prompt
  masks first (:func:`~tubelets.models.ipdt.point.exclusive_masks`). These
  exclusive masks are the previous masks of the next step, so two touching
  objects do not grow into one another.

A frame before some object's prompt frame is seen by both sweeps (the objects
prompted at or before it forward, the later ones backward); its pixels are
assigned once the backward sweep reaches it, over all objects. The forward
sweep's probabilities of those frames are kept until then (float16, ``H x W``
per object and frame; nothing is kept when every prompt is on one frame).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from tubelets import masks
from tubelets.config import build_from_section
from tubelets.errors import ConfigError
from tubelets.io.prompts import check_prompts
from tubelets.models.ipdt import geometry
from tubelets.models.ipdt.checkpoint import UsesTrackingModels
from tubelets.models.ipdt.features import FeatureWindow
from tubelets.models.ipdt.model import FrameEncoding
from tubelets.models.ipdt.point import exclusive_masks, grow_from_points
from tubelets.models.ipdt.propagation import Instance, PropagationSettings, Propagator
from tubelets.models.setting_checks import FRACTION, TRACKING_RULES, check_settings, or_null
from tubelets.models.trackers.base import FrameSource, frame_getter
from tubelets.models.vos_redetect import ProposalSource, snap_to_proposals
from tubelets.records import FrameDetections, ObjectPrompt, TubeletFrame


@dataclasses.dataclass(eq=False, kw_only=True)
class VosSegmenter(UsesTrackingModels):
    """Follows prompted objects through a video (the ``vos:`` config keys); see the module docstring.

    No setting has a default here: ``configs/default.yaml`` holds them. The
    shipped segmenter takes ``tubelets.config.defaults("vos")`` but ``prompts``
    (the pipeline's: which objects to follow, not how).
    """

    checkpoint: Optional[str]  # tracker checkpoint (fsspec URL or builtin:NAME)
    detector_checkpoint: Optional[str]  # null: the detector recorded in the tracker checkpoint
    device: str  # auto (GPU when present) | cpu | cuda[:N]
    precision: str  # the backbone pass: auto | float32 | bfloat16 | float16 (features.FeatureWindow)
    mask_threshold: float  # on mask probabilities, and the floor of the one-object-per-pixel rule
    min_confidence: float  # an object below is lost in that frame (no mask), still searched for
    max_lost: int  # lost frames over which the search follows the motion extrapolation; then it stays put
    # The mask is cut to the refined box grown by this factor. Wider than the trackers' (1.15): the Siamese box
    # lags a moving object and a tight cut removes its leading edge (Shapes-VIS J 0.56 at 1.15, 0.60 at 3).
    box_margin: float
    window_influence: float  # Siamese cosine-window weight (motion prior)
    # FEELVOS embedding distance within which a click's seed region grows (little effect with tracker-vos-small,
    # whose distances saturate: see tubelets.models.ipdt.point).
    point_threshold: float
    feature_window: int  # frames whose features are kept
    # re-detection: a proposal overlapping an object's mask more replaces it (None: off)
    snap_iou: Optional[float]
    proposal_score: float  # re-detection: proposals scoring below are ignored

    def __post_init__(self) -> None:
        self._check_settings()
        self.load_models()

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> "VosSegmenter":
        """A segmenter from the ``vos:`` config section; an unknown key is a ``ConfigError`` listing the known ones."""
        return build_from_section(cls, settings, "vos")

    @property
    def settings(self) -> PropagationSettings:
        return PropagationSettings(
            use_instance=True,
            use_pixel=True,
            min_confidence=self.min_confidence,
            max_lost=self.max_lost,
            mask_threshold=self.mask_threshold,
            box_margin=self.box_margin,
            window_influence=self.window_influence,
            # VOS steps the objects itself (_Sweeps) and re-detects its own way (vos_redetect): the trackers'
            # sweeps, their snaps, guard and identity rules never run here.
            snap_iou=None,
            cover_iou=None,
            max_unconfirmed=None,
            switch_iou=None,
            max_colour_distance=None,
            relink_frames=None,
            check_fill_colour=False,
            # VOS never stops following an object, so it is cut off (no pixel) as soon as either level doubts it.
            either_level_loses=True,
        )

    @torch.no_grad()
    def segment(self, frames: FrameSource, length: int,
                prompts: Sequence[ObjectPrompt]) -> dict[int, list[TubeletFrame]]:
        """Every prompted object of one video through its ``length`` frames: ``{object_id: frames}``.

        ``frames`` gives the decoded RGB frames ``uint8 [H, W, 3]``. Each list
        is sorted by frame and holds the frames where the object has pixels:
        ``mask`` (JSON RLE), ``box`` (the mask's tight box, ``x1, y1, x2, y2``
        pixel edges), ``score`` (the frame's confidence, 1 on the prompt
        frame). A zero-length video gives ``{}``; bad prompts a ``ValueError``.
        """
        self._require_model()
        if length == 0:
            return {}  # no frame to segment, and none a prompt could be on
        check_prompts(prompts, None, length)
        # With re-detection, one detector pass a frame gives both the tracker's features and the proposals.
        proposal_score = None if self.snap_iou is None else self.proposal_score
        window = FeatureWindow(self.detector, self.model, frame_getter(frames), self.feature_window, proposal_score,
                               precision=self.precision)
        prompt_masks = self._prompt_masks(prompts, window)
        proposals = None if self.snap_iou is None else window.proposals
        return _Sweeps(self, window, {p.object_id: p.frame for p in prompts}, prompt_masks, proposals).run(length)

    @torch.no_grad()
    def grow_from_point(self, encoding: FrameEncoding, points: Sequence[tuple[float, float]],
                        taken: Optional[np.ndarray] = None) -> list[np.ndarray]:
        """One ``bool [H, W]`` mask per ``(x, y)`` click on one frame; see :func:`point.grow_from_points`."""
        self._require_model()
        return grow_from_points(self.model, encoding, points, self.point_threshold, self.mask_threshold, taken)

    def encode_frame(self, frame: np.ndarray) -> FrameEncoding:
        """The :class:`FrameEncoding` of one ``uint8 [H, W, 3]`` frame (for :meth:`grow_from_point`)."""
        self._require_model()
        return FeatureWindow(self.detector, self.model, lambda _: frame, 2, precision=self.precision)[0]

    def _prompt_masks(self, prompts: Sequence[ObjectPrompt], window: FeatureWindow) -> dict[int, torch.Tensor]:
        """``{object_id: bool [H, W]}``: mask prompts checked, clicks grown; one frame's prompts share no pixel."""
        result: dict[int, torch.Tensor] = {}
        for frame in sorted({p.frame for p in prompts}):
            encoding = window[frame]
            on_frame = [p for p in prompts if p.frame == frame]
            given = {p.object_id: prompt_mask(p, encoding.frame_size) for p in on_frame if p.mask is not None}
            taken = _union_of_disjoint(given, frame, encoding.frame_size)
            clicks = [p for p in on_frame if p.point is not None]
            try:
                grown = self.grow_from_point(encoding, [tuple(p.point) for p in clicks], taken)
            except ValueError as error:
                raise ValueError(f"video {on_frame[0].video!r}, frame {frame}: {error}") from None
            result.update({k: torch.from_numpy(m) for k, m in given.items()})
            result.update({p.object_id: torch.from_numpy(m) for p, m in zip(clicks, grown)})
        return result

    def _require_model(self) -> None:
        if self.model is None:
            raise ConfigError("the VOS segmenter has no checkpoint: set vos.checkpoint")

    def _check_settings(self) -> None:
        check_settings(vars(self), _RULES, "vos setting ")


# The tracking rules; re-detection may be off (snap_iou null).
_RULES = {**TRACKING_RULES, "snap_iou": or_null(FRACTION), "point_threshold": FRACTION, "proposal_score": FRACTION}


def prompt_mask(prompt: ObjectPrompt, frame_size: tuple[int, int]) -> np.ndarray:
    """The ``bool [H, W]`` mask of a mask prompt; ``ValueError`` when it is unreadable, empty or not frame-sized."""
    where = f"video {prompt.video!r}, object {prompt.object_id}, frame {prompt.frame}"
    try:
        mask = masks.decode(prompt.mask).astype(bool)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where}: the prompt mask is not a readable RLE ({error})") from None
    if mask.shape != tuple(frame_size):
        raise ValueError(f"{where}: the prompt mask is {mask.shape[1]}x{mask.shape[0]}, "
                         f"the frame {frame_size[1]}x{frame_size[0]}")
    if not mask.any():
        raise ValueError(f"{where}: the prompt mask is empty")
    return mask


def _union_of_disjoint(given: dict[int, np.ndarray], frame: int, frame_size: tuple[int, int]) -> np.ndarray:
    """The union of one frame's prompt masks; ``ValueError`` naming two objects whose masks overlap."""
    owner = np.zeros(frame_size, np.int64)  # object id + 1 per pixel, 0: free
    for object_id, mask in given.items():
        overlap = owner[mask]
        if overlap.any():
            other = int(overlap[overlap > 0][0]) - 1
            raise ValueError(f"frame {frame}: the prompt masks of objects {other} and {object_id} overlap "
                             "(a pixel belongs to one object at most)")
        owner[mask] = object_id + 1
    return owner > 0


@dataclasses.dataclass
class _Evidence:
    """What the objects followed in one frame say about it, in frame pixels."""

    ids: list[int]
    probs: torch.Tensor  # float [N, H, W]: mask probability, 0 outside the object's margin box and where it is lost
    confidence: torch.Tensor  # float [N]; 1 for a prompt
    boxes: torch.Tensor  # float [N, 4]: refined Siamese boxes (a prompt's: its mask's box)
    prompts: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)  # object id -> bool [H, W]

    @classmethod
    def empty(cls, frame_size: tuple[int, int]) -> "_Evidence":
        return cls([], torch.zeros((0, *frame_size)), torch.zeros(0), torch.zeros((0, 4)))

    def __add__(self, other: "_Evidence") -> "_Evidence":
        return _Evidence(self.ids + other.ids, torch.cat([self.probs.float(), other.probs.float()]),
                         torch.cat([self.confidence, other.confidence]), torch.cat([self.boxes, other.boxes]),
                         {**self.prompts, **other.prompts})

    def compact(self) -> "_Evidence":
        """The same, probabilities in float16 (kept for the backward sweep)."""
        return dataclasses.replace(self, probs=self.probs.half())


class _Sweeps:
    """The per-video state of one :meth:`VosSegmenter.segment` call (see the module docstring)."""

    def __init__(self, segmenter: VosSegmenter, window: FeatureWindow, prompt_frames: dict[int, int],
                 prompt_masks: dict[int, torch.Tensor], proposals: Optional[ProposalSource] = None):
        self.settings = segmenter.settings
        self.proposals, self.snap_iou = proposals, segmenter.snap_iou
        self.propagator = Propagator(segmenter.model, self.settings)
        self.window, self.prompt_frames, self.prompt_masks = window, prompt_frames, prompt_masks
        self.frame_size = next(iter(prompt_masks.values())).shape
        self.objects = self._make_objects()
        self.outputs: dict[int, dict[int, TubeletFrame]] = {}  # frame -> object id -> its mask there
        self.kept: dict[int, _Evidence] = {}  # forward evidence of frames the backward sweep revisits

    def run(self, length: int) -> dict[int, list[TubeletFrame]]:
        self._forward(length)
        self._backward()
        tracks: dict[int, list[TubeletFrame]] = {object_id: [] for object_id in sorted(self.objects)}
        for frame in sorted(self.outputs):
            for object_id, item in self.outputs[frame].items():
                tracks[object_id].append(item)
        return tracks

    def _make_objects(self) -> dict[int, Instance]:
        """Templates and reference embeddings of every prompt, one batch per prompt frame."""
        objects = {}
        for frame in sorted(set(self.prompt_frames.values())):
            ids = self._joining(frame)
            stacked = torch.stack([self.prompt_masks[k] for k in ids])
            boxes, _ = geometry.mask_boxes(stacked)
            detections = FrameDetections(frame, boxes.numpy(), np.ones(len(ids), np.float32), np.asarray(ids, np.int64),
                                         [masks.encode(m.numpy().astype(np.uint8)) for m in stacked])
            instances = self.propagator.make_instances(detections, self.window[frame], 0)
            objects.update(zip(ids, instances))
        return objects

    def _joining(self, frame: int) -> list[int]:
        return [k for k, f in self.prompt_frames.items() if f == frame]

    def _forward(self, length: int) -> None:
        last_prompt = max(self.prompt_frames.values())
        active: list[int] = []
        for frame in range(min(self.prompt_frames.values()), length):
            evidence = self._step(active, frame, frame - 1) + self._prompted(frame)
            self._settle(frame, evidence, active)
            if frame < last_prompt:
                self.kept[frame] = evidence.compact()
            active += self._joining(frame)

    def _backward(self) -> None:
        active: list[int] = []
        for frame in range(max(self.prompt_frames.values()) - 1, -1, -1):
            for object_id in self._joining(frame + 1):
                self.objects[object_id].reset()  # back to the prompt, for this direction
                active.append(object_id)
            evidence = self._step(active, frame, frame + 1)
            self._settle(frame, evidence + self.kept.pop(frame, _Evidence.empty(self.frame_size)), active)

    def _prompted(self, frame: int) -> _Evidence:
        """The prompts of ``frame`` as evidence: probability 1 on the mask."""
        ids = self._joining(frame)
        if not ids:
            return _Evidence.empty(self.frame_size)
        prompts = {k: self.prompt_masks[k] for k in ids}
        stacked = torch.stack(list(prompts.values()))
        return _Evidence(ids, stacked.float(), torch.ones(len(ids)), geometry.mask_boxes(stacked)[0], prompts)

    def _step(self, active: list[int], frame: int, previous: int) -> _Evidence:
        """Every ``active`` object moved into ``frame`` in one batched step (``previous``: one frame back)."""
        if not active:
            return _Evidence.empty(self.frame_size)
        result = self.propagator.step([self.objects[k] for k in active], self.window[frame], self.window[previous])
        inside = geometry.box_masks(geometry.scale_boxes(result.boxes, self.settings.box_margin), self.frame_size)
        found = result.confidence >= self.settings.min_confidence
        # VOS shares a frame's pixels among its objects on the CPU (exclusive_masks, the prompts' masks there).
        probs = result.probs.float().cpu() * (inside & found[:, None, None])
        if self.proposals is not None:
            probs = snap_to_proposals(probs, self.proposals(frame), self.settings.mask_threshold, self.snap_iou)
        return _Evidence(list(active), probs, result.confidence, result.boxes)

    def _settle(self, frame: int, evidence: _Evidence, stepped: list[int]) -> None:
        """Assign ``frame``'s pixels, record the objects' masks there and move the ``stepped`` objects on."""
        fixed = {row: evidence.prompts[k] for row, k in enumerate(evidence.ids) if k in evidence.prompts}
        assigned = exclusive_masks(evidence.probs, self.settings.mask_threshold, fixed)
        boxes, present = geometry.mask_boxes(assigned)
        items = {}
        for row, object_id in enumerate(evidence.ids):
            if present[row]:
                items[object_id] = TubeletFrame(frame, masks.encode(assigned[row].numpy().astype(np.uint8)),
                                                boxes[row].numpy(), float(evidence.confidence[row]))
        self.outputs[frame] = items
        for row, object_id in enumerate(evidence.ids):
            if object_id in stepped:
                self._move_on(self.objects[object_id], frame, items.get(object_id), evidence, row, assigned[row])

    def _move_on(self, instance: Instance, frame: int, item: Optional[TubeletFrame], evidence: _Evidence, row: int,
                 mask: torch.Tensor) -> None:
        """The object's state after ``frame``: found there (its exclusive mask, refined box) or one more frame lost."""
        if item is not None:  # pixels only go to objects at or above min_confidence (see _step)
            # The search follows the Siamese box (the object's full extent), not the mask's box, which
            # shrinks where another object covers part of it.
            state = dataclasses.replace(item, box=evidence.boxes[row].numpy())
            Propagator.found(instance, frame, state, mask.float())
        else:
            instance.lost = min(instance.lost + 1, self.settings.max_lost)  # the extrapolation stops after max_lost
