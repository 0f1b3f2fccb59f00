"""Where a benchmark may take the propagation's decisions from the truth instead of the tracker's rules.

An :class:`Oracle` is asked at three points of the sweeps of
:class:`.propagation.Propagator`: when the unconfirmed guard fires
(:meth:`Oracle.guard`), when a frame the heads filled is kept
(:meth:`Oracle.kept_fill`) and when relinking pairs stopped extensions with
new instances (:meth:`Oracle.relinks`); :meth:`Oracle.start_video` is called
before each video. This base class answers each with the tracker's own
decision, so a propagator asking it runs as the tracker does.

A propagator takes its oracle as an argument. The trackers build their own
propagator per video, so a benchmark hands its oracle to every propagator
built inside ``with deciding(oracle):`` (``benchmarks/tracker_oracles.py``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import TYPE_CHECKING, Iterator, Sequence

from tubelets.records import TubeletFrame, VideoProposals

if TYPE_CHECKING:
    from tubelets.models.ipdt.propagation import Instance
    from tubelets.models.ipdt.relinking import RelinkRule


@dataclasses.dataclass(frozen=True)
class GuardDecision:
    """What happens to a direction the unconfirmed guard fired on."""

    stops: bool  # the direction ends at this frame (else it goes on, and the guard is asked again next frame)
    dropped: tuple[int, ...] = ()  # frames taken out of its tubelet as it stops (its unconfirmed tail, or part of it)


class Oracle:
    """The propagation's decisions a benchmark may take over; this base class takes the tracker's own."""

    def start_video(self, proposals: VideoProposals) -> None:
        """Called before the sweeps of the video of ``proposals``."""

    def guard(self, instance: Instance) -> GuardDecision:
        """The unconfirmed guard fired on ``instance`` (gate 4 of :mod:`.gates`): the direction stops, its
        unconfirmed tail dropped."""
        return GuardDecision(stops=True, dropped=tuple(instance.unconfirmed))

    def kept_fill(self, instance: Instance, item: TubeletFrame) -> TubeletFrame:
        """What ``instance``'s tubelet records for ``item``, a frame the heads filled and the gates kept.

        Asked after the guard, only where the direction goes on. The tracking
        state (the instance's mask and box) keeps the heads' prediction
        whatever this returns.
        """
        return item

    def relinks(self, started: Sequence[Instance], stopped: Sequence[Instance], rule: RelinkRule) -> dict[int, int]:
        """``{started serial: stopped serial}``: which of ``started`` continue which of ``stopped``."""
        return rule.links(started, stopped)


TRACKER = Oracle()  # the tracker's own decisions
_deciding: contextvars.ContextVar[Oracle] = contextvars.ContextVar("ipdt_oracle", default=TRACKER)


@contextlib.contextmanager
def deciding(oracle: Oracle) -> Iterator[Oracle]:
    """Every propagator built in the block asks ``oracle`` (one given to a propagator explicitly is kept)."""
    token = _deciding.set(oracle)
    try:
        yield oracle
    finally:
        _deciding.reset(token)


def current() -> Oracle:
    """The oracle of the innermost :func:`deciding` block, or :data:`TRACKER` outside any."""
    return _deciding.get()
