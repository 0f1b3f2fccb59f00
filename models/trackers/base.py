"""The tracker interface and its registry.

A tracker turns one video's (calibrated) proposals into tubelets. It is a
plain object, as in pysot: no framework, no globals. It holds its settings
only; all per-video state lives inside one :meth:`Tracker.track` call, so one
instance (built once per worker) serves every video.

Trackers register under a name and read their own sub-section of the
``tracker:`` config section::

    tracker:
      name: iou          # the tracker a run uses
      iou:               # settings of the "iou" tracker
        max_age: 5

    tracker = build_tracker(None, config["tracker"])   # or build_tracker("iou", ...)
    tubelets = tracker.track(proposals, frames)

A new tracker subclasses :class:`Tracker`, takes its settings as keyword
arguments of ``__init__`` (a dataclass is the easy way), decorates itself
with ``@register_tracker("name")`` and is imported in ``trackers/__init__.py``.
Its settings have no defaults in Python: ``configs/default.yaml`` is their
one home (a ``tracker.<name>`` section), and ``tubelets.config.defaults``
gives them to code that builds a tracker outside a run.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar, Union

import numpy as np

from tubelets.config import build_from_section
from tubelets.errors import ConfigError
from tubelets.records import Tubelet, VideoProposals
from tubelets.registry import Registry

# RGB uint8 frames [H, W, 3] of the decoded video, by 0-based frame number.
FrameSource = Union[Callable[[int], np.ndarray], Sequence[np.ndarray]]


def _must_be_tracker(name: str, cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Tracker)):
        raise TypeError(f"tracker {name!r} must be a Tracker subclass, got {cls!r}")


TrackerType = TypeVar("TrackerType", bound=type["Tracker"])


class Tracker(abc.ABC):
    """Links per-frame detections of one video into tubelets."""

    @abc.abstractmethod
    def track(self, proposals: VideoProposals, frames: Optional[FrameSource] = None) -> list[Tubelet]:
        """Tubelets of one video, ids ``0 .. n-1`` by first frame.

        ``frames`` gives the decoded RGB frames for trackers that look at
        pixels; trackers that only use the proposals ignore it.
        """

    @classmethod
    def from_config(cls, settings: Mapping[str, Any], section: str) -> "Tracker":
        """An instance from this tracker's config sub-section (named ``section`` in errors, e.g. ``tracker.iou``).

        A key the tracker does not take, or one it needs and ``settings`` lacks, is a ConfigError.
        """
        return build_from_section(cls, settings, section)


TRACKERS: Registry[type[Tracker]] = Registry("tracker", check=_must_be_tracker)


def register_tracker(name: str) -> Callable[[TrackerType], TrackerType]:
    """Class decorator: make a :class:`Tracker` subclass buildable as ``name``."""
    return TRACKERS.register(name)


def known_trackers() -> list[str]:
    """Names that :func:`build_tracker` accepts."""
    return TRACKERS.names()


def build_tracker(name: Optional[str], tracker_cfg: Mapping[str, Any]) -> Tracker:
    """The tracker ``name`` (None: ``tracker_cfg["name"]``) with its settings from ``tracker_cfg[name]``.

    ``tracker_cfg`` is the whole ``tracker:`` config section; a setting the
    tracker does not take, or one it needs and is not there, is a ConfigError.
    """
    name = name if name is not None else tracker_cfg.get("name")
    tracker_class = TRACKERS.get(name)
    settings = tracker_cfg.get(name, {})
    if not isinstance(settings, Mapping):
        raise ConfigError(f"tracker.{name} must be a mapping of settings, got {type(settings).__name__}")
    return tracker_class.from_config(settings, f"tracker.{name}")


def frame_getter(frames: Optional[FrameSource]) -> Callable[[int], np.ndarray]:
    """``frames`` as a function of the frame number; raises a ValueError when there are none."""
    if frames is None:
        def missing(index: int) -> np.ndarray:
            raise ValueError(f"this tracker needs the video's frames (asked for frame {index}), but none were given")

        return missing
    if callable(frames):
        return frames
    return frames.__getitem__
