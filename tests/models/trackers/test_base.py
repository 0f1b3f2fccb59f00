import dataclasses

import numpy as np
import pytest

from tubelets.config import defaults
from tubelets.errors import ConfigError
from tubelets.models.trackers import base, build_tracker, frame_getter, known_trackers, register_tracker
from tubelets.models.trackers.iou import IouTracker


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so test trackers do not leak into other tests."""
    monkeypatch.setattr(base, "TRACKERS", base.TRACKERS.copy())


def test_iou_is_registered_and_selected_by_name():
    assert "iou" in known_trackers()
    shipped = defaults("tracker")
    assert isinstance(build_tracker("iou", {**shipped, "name": "something-else"}), IouTracker)
    assert isinstance(build_tracker(None, {**shipped, "name": "iou"}), IouTracker)


def test_unknown_or_missing_name_lists_the_known_trackers():
    with pytest.raises(ConfigError, match=r"unknown tracker 'sort'; known trackers: instance, iou, ipdt, pixel"):
        build_tracker("sort", {})
    with pytest.raises(ConfigError, match="unknown tracker None"):
        build_tracker(None, {})


def test_unknown_missing_settings_and_a_non_mapping_section_are_config_errors():
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['max_agee'\] for tracker.iou; .*max_age"):
        build_tracker("iou", {"iou": {**defaults("tracker.iou"), "max_agee": 3}})
    # No tracker keeps defaults of its own: a partial section is refused, naming what it lacks.
    lacking = r"missing setting\(s\) \['class_mismatch_scale', 'mask_weight', .*\] for tracker.iou"
    with pytest.raises(ConfigError, match=lacking):
        build_tracker("iou", {"iou": {"max_age": 3}})
    with pytest.raises(ConfigError, match=lacking):
        build_tracker("iou", {"name": "iou"})
    with pytest.raises(ConfigError, match="tracker.iou must be a mapping"):
        build_tracker("iou", {"iou": [1, 2]})


def test_a_new_tracker_registers_and_builds_from_its_own_section(registry):
    @register_tracker("constant")
    @dataclasses.dataclass
    class ConstantTracker(base.Tracker):
        answer: int

        def track(self, proposals, frames=None):
            return [self.answer]

    assert known_trackers() == ["constant", "instance", "iou", "ipdt", "pixel"]
    tracker = build_tracker(None, {"name": "constant", "constant": {"answer": 42}, "iou": {"max_agee": 1}})
    assert tracker.track(None) == [42]
    with pytest.raises(ValueError, match="registered twice"):
        register_tracker("constant")(ConstantTracker)
    with pytest.raises(TypeError, match="must be a Tracker subclass"):
        register_tracker("plain")(dict)


def test_frame_getter_accepts_sequences_and_callables():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(3)]
    assert frame_getter(frames)(2)[0, 0, 0] == 2
    assert frame_getter(lambda index: frames[index])(1)[0, 0, 0] == 1
    with pytest.raises(ValueError, match="needs the video's frames"):
        frame_getter(None)(0)
