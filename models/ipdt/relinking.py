"""Relinking: a forward extension that stopped continues as a new instance of its object started soon after.

The heads lose an object the detector stopped proposing (the guard of
:mod:`.gates` stops the direction), and the detector's next proposal of it
starts a new instance; the two tubelets share no frame, so merging cannot join
them. With ``relink_frames`` (and the colour check) a new instance continues a
stopped forward extension when

    ``stopped_recently(...) & starts_inside_search_window(...) & same_colour(...)``

that is: its seed comes 1 to ``relink_frames + 1`` frames after the
extension's last kept frame (up to ``relink_frames`` frames between them), its
seed's centre lies in the search window the tracker would have used had the
extension gone on at its last velocity, and the two seeds' colours are within
``max_colour_distance``. Pairs are assigned one to one, the closest colours
first (:class:`RelinkRule`); the sweep's bookkeeping of who may still pair is
:class:`Relinker`'s. The chained instances become one tubelet candidate
(:func:`.propagation.chained_candidates`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from tubelets.models.ipdt import appearance, geometry

if TYPE_CHECKING:
    from tubelets.models.ipdt.model import IPDTConfig
    from tubelets.models.ipdt.oracle import Oracle
    from tubelets.models.ipdt.propagation import Instance


def frame_gaps(started: Sequence[Instance], stopped: Sequence[Instance]) -> torch.Tensor:
    """``float32 [S, O]``: frames from each stopped extension's last kept frame to each started instance's seed."""
    return (torch.tensor([new.seed_frame for new in started], dtype=torch.float32)[:, None]
            - torch.tensor([last_kept_frame(old) for old in stopped], dtype=torch.float32)[None, :])


def last_kept_frame(stopped: Instance) -> int:
    """The last frame a stopped extension kept (its state may be further on: a dropped unconfirmed tail)."""
    return max(stopped.frames)


def stopped_recently(gaps: torch.Tensor, relink_frames: int) -> torch.Tensor:
    """``bool``: the new seed comes after the last kept frame, with at most ``relink_frames`` frames between them."""
    return (gaps >= 1) & (gaps - 1 <= relink_frames)


def starts_inside_search_window(started: Sequence[Instance], stopped: Sequence[Instance], gaps: torch.Tensor,
                                config: IPDTConfig) -> torch.Tensor:
    """``bool [S, O]``: the new seed's centre lies in the search window of the stopped extension gone on ``gaps`` steps.

    The window is the instance level's own (:func:`.geometry.search_boxes`)
    around the last kept box moved at the extension's last velocity: where the
    tracker would have looked for the object had it not stopped.
    """
    last = torch.stack([torch.as_tensor(old.frames[last_kept_frame(old)].box, dtype=torch.float32)
                        for old in stopped])
    velocities = torch.stack([old.velocity for old in stopped])
    expected = geometry.shift_boxes(last[None], velocities[None] * gaps[..., None])  # [S, O, 4]
    windows = geometry.search_boxes(expected.reshape(-1, 4), config.context, config.template_size,
                                    config.search_size).reshape(expected.shape)
    seeds = torch.stack([torch.as_tensor(new.seed.box, dtype=torch.float32) for new in started])
    centres = geometry.box_centres_sizes(seeds)[0]
    return ((centres[:, None] >= windows[..., :2]) & (centres[:, None] <= windows[..., 2:])).all(2)


def seed_colour_distances(started: Sequence[Instance], stopped: Sequence[Instance]) -> np.ndarray:
    """``[S, O]`` distances between the seeds' colours (:func:`.appearance.colour_distances`; NaN if one is unknown)."""
    return appearance.colour_distances(np.stack([new.colour for new in started]),
                                       np.stack([old.colour for old in stopped]))


def same_colour(distances: np.ndarray, max_colour_distance: float) -> np.ndarray:
    """``bool``: the seeds' colours are within ``max_colour_distance``.

    An unknown colour (NaN) is not the same: joining two instances needs
    evidence that they are one object, where the snaps' check refuses only
    evidence that they are two.
    """
    return distances <= max_colour_distance


class RelinkRule:
    """Which stopped forward extensions the new instances continue (the module docstring's condition)."""

    def __init__(self, relink_frames: int, max_colour_distance: float, config: IPDTConfig):
        self.relink_frames, self.max_colour_distance, self.config = relink_frames, max_colour_distance, config

    def links(self, started: Sequence[Instance], stopped: Sequence[Instance]) -> dict[int, int]:
        """``{started serial: stopped serial}``, one to one, the closest colours first."""
        if not started or not stopped:
            return {}
        gaps = frame_gaps(started, stopped)
        distances = seed_colour_distances(started, stopped)
        accepted = ((stopped_recently(gaps, self.relink_frames)
                     & starts_inside_search_window(started, stopped, gaps, self.config)).numpy()
                    & same_colour(distances, self.max_colour_distance))
        closeness = np.where(accepted, 1.0 / (1.0 + np.nan_to_num(distances)), 0.0)
        rows, cols = linear_sum_assignment(closeness, maximize=True)
        return {started[r].serial: stopped[c].serial for r, c in zip(rows.tolist(), cols.tolist()) if accepted[r, c]}

    def still_recent(self, started: Instance, frame: int) -> bool:
        """Whether an instance started before ``frame`` may still continue an extension that stops now or later."""
        return frame - started.seed_frame <= self.relink_frames

    def may_still_be_continued(self, stopped: Instance, frame: int) -> bool:
        """Whether a stopped extension may still be continued by an instance that is still recent at ``frame``.

        The earliest such seed is ``relink_frames`` frames back; it continues
        only an extension whose last kept frame is at most ``relink_frames + 1``
        frames before it.
        """
        return last_kept_frame(stopped) + 1 + self.relink_frames >= frame - self.relink_frames


class Relinker:
    """The forward sweep's relinking bookkeeping: who may still pair, and the links made.

    An extension that drifted stops only after its unconfirmed tail, so its
    object's next instance may have started before it stopped. After each
    frame where instances started or extensions stopped (:meth:`after_frame`),
    the instances started up to ``relink_frames`` ago that continue none yet
    (``recent``) are paired with the extensions that stopped and that one of
    them may still continue (``stopped``); a paired instance leaves both lists.
    The pairing is the :class:`RelinkRule`'s unless the ``oracle`` takes it
    over (:meth:`.oracle.Oracle.relinks`). ``rule`` None: relinking is off.
    """

    def __init__(self, rule: RelinkRule | None, oracle: Oracle):
        self.rule, self.oracle = rule, oracle
        self.recent: list[Instance] = []  # instances started up to relink_frames ago that continue none yet
        self.stopped: list[Instance] = []  # forward extensions that stopped, while a recent instance may continue them
        self.links: dict[int, int] = {}  # serial of a relinked instance -> serial of the one it continues

    def after_frame(self, frame: int, started: Sequence[Instance], halted: Sequence[Instance]) -> None:
        """Pair after ``frame``, where ``started`` instances began and ``halted`` forward extensions stopped."""
        rule = self.rule
        if rule is None or not (started or halted):
            return
        self.recent = [i for i in self.recent + list(started) if rule.still_recent(i, frame)]
        self.stopped = [i for i in self.stopped + list(halted) if rule.may_still_be_continued(i, frame)]
        self.links.update(self.oracle.relinks(self.recent, self.stopped, rule))
        self.recent = [i for i in self.recent if i.serial not in self.links]
        self.stopped = [i for i in self.stopped if i.serial not in self.links.values()]
