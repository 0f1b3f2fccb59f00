"""Checks of a model's settings where it is built, each rule written once.

A rule is ``(what the value must be, in words; whether a value is that)``;
:func:`check_settings` applies a table of them and names the first bad
setting, e.g. ``tracker setting max_lost must be an integer >= 0, got -1``.
Types are strict, as in :mod:`tubelets.settings` (``true`` is not a number,
``1.5`` not an integer), so a model built outside a run (tests, benchmarks,
notebooks) refuses what the config check would.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from tubelets.errors import ConfigError

Rule = tuple[str, Callable[[Any], bool]]


def check_settings(settings: Mapping[str, Any], rules: Mapping[str, Rule], prefix: str) -> None:
    """``ConfigError`` ``"{prefix}{name} must be ..."`` for the first of ``settings`` its rule refuses.

    Settings without a rule (checkpoints, the device: checked where they load) pass.
    """
    for name, value in settings.items():
        if name in rules:
            expected, accepts = rules[name]
            if not accepts(value):
                raise ConfigError(f"{prefix}{name} must be {expected}, got {value!r}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def or_null(rule: Rule) -> Rule:
    """``rule``, or None."""
    expected, accepts = rule
    return f"{expected} or null", lambda value: value is None or accepts(value)


def count_from(minimum: int) -> Rule:
    """An integer ``>= minimum``."""
    return f"an integer >= {minimum}", lambda value: _integer(value) and value >= minimum


FRACTION: Rule = ("a number in [0, 1]", lambda value: _number(value) and 0 <= value <= 1)
POSITIVE_FRACTION: Rule = ("a number in (0, 1]", lambda value: _number(value) and 0 < value <= 1)
FLAG: Rule = ("true or false", lambda value: isinstance(value, bool))

# The IPDT settings, shared by the trackers (tubelets.models.trackers.ipdt: each has a subset) and the VOS segmenter
# (tubelets.models.vos, which adds its own).
TRACKING_RULES: dict[str, Rule] = {
    **{name: FRACTION
       for name in ("min_confidence", "mask_threshold", "window_influence", "snap_iou", "cover_iou", "th_seq")},
    "switch_iou": or_null(FRACTION),
    "max_lost": count_from(0),
    "feature_window": count_from(2),
    "max_unconfirmed": or_null(count_from(0)),
    "relink_frames": or_null(count_from(0)),
    "box_margin": ("a number >= 1", lambda value: _number(value) and value >= 1),
    "check_fill_colour": FLAG,
    "max_colour_distance": or_null(("a number > 0", lambda value: _number(value) and value > 0)),
}
