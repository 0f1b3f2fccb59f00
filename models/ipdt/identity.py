"""Whether the object a tracker would take is still the reference instance's: the identity checks of propagation.

The heads follow whatever looks like the instance; these checks say when it is
another object (:mod:`tubelets.models.ipdt.propagation` asks them):

* **colour** (``max_colour_distance``): a proposal, or with
  ``check_fill_colour`` a frame the heads fill, whose mean colour is further
  from the seed's is another object (:mod:`.appearance`: the discriminator
  cannot tell an instance from a neighbour it touches);
* **relinking** (``relink_frames``): a forward extension that stopped is the
  same object as a new instance of its colour started where its search would
  have been, soon after;
* **holders** (``switch_iou``, backward sweep): a proposal held by a tubelet
  that was apart from the extension since its seed is another object's.

One :class:`IdentityCheck` serves one video at a time (:meth:`start_video`);
it caches the proposals' colours per frame (both sweeps read them) and which
pairs of tubelets were apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from tubelets import masks
from tubelets.models.ipdt import appearance, geometry
from tubelets.records import FrameDetections, TubeletFrame

if TYPE_CHECKING:
    from tubelets.models.ipdt.model import IPDTConfig
    from tubelets.models.ipdt.propagation import Instance, PropagationSettings, StepResult

ImageSource = Callable[[int], np.ndarray]  # frame number -> uint8 [H, W, 3] RGB frame


class IdentityCheck:
    """The identity checks of one video's propagation (see the module docstring)."""

    def __init__(self, settings: PropagationSettings, model_config: IPDTConfig):
        self.settings, self.model_config = settings, model_config
        self._images: ImageSource | None = None  # the video's frames, for the colour check
        self._proposal_colours: dict[int, np.ndarray] = {}  # frame -> its proposals' colours
        self._apart_cache: dict[tuple[int, int], bool] = {}  # (serial, serial) -> tubelets apart since the first's seed

    def start_video(self, images: ImageSource | None) -> None:
        """Forget the last video; ``images`` (the RGB frames) is needed with the colour check only."""
        self._images, self._proposal_colours, self._apart_cache = images, {}, {}

    def proposal_colours(self, detections: FrameDetections) -> np.ndarray:
        """``[D, 3]`` colours of a frame's proposals, computed once per frame."""
        if detections.frame not in self._proposal_colours:
            self._proposal_colours[detections.frame] = self.colours(detections.frame, detections.masks)
        return self._proposal_colours[detections.frame]

    def colours(self, frame: int, rles: Sequence) -> np.ndarray:
        """``[N, 3]`` colours of masks of ``frame`` (:func:`appearance.mask_colours`)."""
        return appearance.mask_colours(self._image(frame), rles)

    def other_colour(self, references: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """``bool [N, D]``: candidate ``d`` is further than ``max_colour_distance`` from reference ``n``.

        A NaN distance (an empty mask) is False: nothing says it differs.
        """
        return appearance.colour_distances(references, candidates) > self.settings.max_colour_distance

    def keeps_seed_colour(self, result: StepResult, n: int, instance: Instance, frame: int) -> bool:
        """Whether prediction ``n`` in ``frame`` is still the seed's colour (always, unless ``check_fill_colour``).

        The snaps' identity check, applied to the frames the heads fill: a
        prediction that slid onto the background or onto an object of
        another colour is lost there rather than kept until the guard drops it.
        """
        if not (self.settings.checks_colour and self.settings.check_fill_colour):
            return True
        if result.colours is None:  # every prediction's colour at once, the first time a fill needs one
            result.colours = self.colours(frame, result.encoded_masks())
        return not self.other_colour(instance.colour[None], result.colours[n][None])[0, 0]

    def relinks(self, started: list[Instance], stopped: list[Instance]) -> dict[int, int]:
        """``{started serial: stopped serial}``: instances that continue a stopped forward extension.

        A started instance can continue a stopped one whose last kept frame
        is before its seed, at most ``relink_frames`` frames before. The
        instance level re-identifies the object by what the snaps check and
        the search assumes: the seed's colour is within
        ``max_colour_distance`` of the stopped instance's seed, and its
        centre lies in the search window the tracker would have used had it
        gone on at the stopped instance's last velocity up to the seed's
        frame. Pairs are assigned one to one, the closest colours first.
        """
        if not started or not stopped:
            return {}
        # From the last frame it kept (a dropped unconfirmed tail leaves its state further on).
        last_frames = [max(old.frames) for old in stopped]
        last = torch.stack([torch.as_tensor(old.frames[f].box, dtype=torch.float32)
                            for old, f in zip(stopped, last_frames)])
        gaps = (torch.tensor([new.seed_frame for new in started], dtype=torch.float32)[:, None]
                - torch.tensor(last_frames, dtype=torch.float32)[None, :])  # [S, O]
        velocities = torch.stack([old.velocity for old in stopped])
        expected = geometry.shift_boxes(last[None], velocities[None] * gaps[..., None])  # [S, O, 4]
        config = self.model_config
        windows = geometry.search_boxes(expected.reshape(-1, 4), config.context, config.template_size,
                                        config.search_size).reshape(expected.shape)
        seeds = torch.stack([torch.as_tensor(new.seed.box, dtype=torch.float32) for new in started])
        centres = geometry.box_centres_sizes(seeds)[0]
        inside = ((centres[:, None] >= windows[..., :2]) & (centres[:, None] <= windows[..., 2:])).all(2)
        in_time = (gaps >= 1) & (gaps - 1 <= self.settings.relink_frames)
        distances = appearance.colour_distances(np.stack([new.colour for new in started]),
                                                np.stack([old.colour for old in stopped]))
        accepted = (inside & in_time).numpy() & (distances <= self.settings.max_colour_distance)
        closeness = np.where(accepted, 1.0 / (1.0 + np.nan_to_num(distances)), 0.0)
        rows, cols = linear_sum_assignment(closeness, maximize=True)
        return {started[r].serial: stopped[c].serial for r, c in zip(rows.tolist(), cols.tolist()) if accepted[r, c]}

    def taken_from_another_object(self, instance: Instance, item: TubeletFrame, holders: Sequence[Instance]) -> bool:
        """Whether proposal ``item``, which ``instance`` would take, is held by a tubelet of another object.

        A holder whose mask there overlaps the proposal (IoU > ``cover_iou``)
        is the same object as ``instance`` only if their tubelets overlapped
        since ``instance``'s seed (mean mask IoU over the frames both hold,
        at least ``switch_iou``): an object re-proposed after its tubelet lost
        it is one, an object that came out from behind the holder's is not.
        With no shared frame nothing says they differ.
        """
        if self.settings.switch_iou is None:
            return False
        for holder in holders:
            if holder is instance:
                continue
            held = holder.frames[item.frame].mask
            if masks.iou_matrix([item.mask], [held])[0, 0] > self.settings.cover_iou and self._apart(instance, holder):
                return True
        return False

    def _apart(self, instance: Instance, holder: Instance) -> bool:
        """Whether the two tubelets' mean mask IoU over shared frames since ``instance``'s seed is below ``switch_iou``.

        Cached: in the backward sweep neither gains a frame after that seed.
        """
        key = (instance.serial, holder.serial)
        if key not in self._apart_cache:
            shared = [f for f in instance.frames if f >= instance.seed_frame and f in holder.frames]
            ious = [masks.iou_matrix([instance.frames[f].mask], [holder.frames[f].mask])[0, 0] for f in shared]
            self._apart_cache[key] = bool(shared) and float(np.mean(ious)) < self.settings.switch_iou
        return self._apart_cache[key]

    def _image(self, frame: int) -> np.ndarray:
        """The RGB frame, for the colour check (which needs the frames given to the propagator's ``run``)."""
        if self._images is None:
            raise ValueError("the colour check (max_colour_distance) needs the video's frames: pass them to run")
        return self._images(frame)
