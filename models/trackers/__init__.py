"""Trackers: one video's proposals in, tubelets out, behind one interface and registry.

Importing this package registers every tracker; add each new tracker module
to the imports below.
"""

from tubelets.models.trackers import iou  # noqa: F401  (registers "iou")
from tubelets.models.trackers import ipdt  # noqa: F401  (registers "ipdt", "pixel", "instance")
from tubelets.models.trackers.base import (
    FrameSource,
    Tracker,
    build_tracker,
    frame_getter,
    known_trackers,
    register_tracker,
)

__all__ = ["FrameSource", "Tracker", "build_tracker", "frame_getter", "known_trackers", "register_tracker"]
