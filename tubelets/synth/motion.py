"""Object trajectories and camera pans.

All paths are in *screen* pixels (the frame's own coordinates, see
``shapes.Placement``): objects move on screen by themselves, and a camera pan
slides the background and its clutter under them, which is the ego-motion a
tracker has to see through.

Random curves come from :func:`smooth_random`: values at a few evenly spaced knots
joined by a shape-preserving (PCHIP) interpolant, which never overshoots its knots,
so every curve stays inside the range it was drawn from. Two knots give a steady
drift; more knots give motion that speeds up, slows down and turns.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.interpolate import PchipInterpolator

from tubelets.synth.shapes import SHAPE_REACH, Placement
from tubelets.synth.spec import SceneSpec

# Entering objects must get at least this far in (units of R) within ENTER_FRAMES frames.
ENTER_DEPTH = 0.6
ENTER_FRAMES = 20
# Shortest stay of an object that enters late, so that it has time to come in.
MIN_LATE_FRAMES = 11
HEADING_SPREAD = 0.7  # radians an entering or leaving object's heading strays from the edge normal


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """One object's path over a ``T``-frame video.

    The object exists from frame ``start`` on. ``centres`` is ``float64 [T, 2]`` screen
    ``(x, y)``, ``angles`` and ``radii`` are ``float64 [T]`` (radians, pixels); entries
    before ``start`` are NaN. Existing does not mean visible: the object may be
    outside the frame or hidden.
    """

    start: int
    centres: np.ndarray
    angles: np.ndarray
    radii: np.ndarray

    def present(self, frame: int) -> bool:
        return frame >= self.start

    def placement(self, frame: int) -> Placement:
        x, y = self.centres[frame]
        return Placement(float(x), float(y), float(self.angles[frame]), float(self.radii[frame]))


def smooth_random(rng: np.random.Generator, length: int, knots: int, low: float, high: float) -> np.ndarray:
    """``float64 [length]`` smooth random curve with values in ``[low, high]``."""
    values = rng.uniform(low, high, max(knots, 2))
    if length == 1:
        return values[:1]
    times = np.linspace(0, length - 1, len(values))
    return PchipInterpolator(times, values)(np.arange(length))


def sample_camera_path(rng: np.random.Generator, length: int, short_side: int, scene: SceneSpec) -> np.ndarray:
    """Camera offsets ``float64 [T, 2]`` (x, y pixels) from frame 0; all zero for a still camera."""
    if rng.random() >= scene.pan:
        return np.zeros((length, 2))
    top = scene.pan_speed * short_side
    velocity = np.stack([smooth_random(rng, length, scene.pan_knots, -top, top) for _ in range(2)], axis=1)
    velocity[0] = 0.0
    return np.cumsum(velocity, axis=0)


def sample_trajectory(
    rng: np.random.Generator, length: int, width: int, height: int, radius_range: tuple[float, float], scene: SceneSpec
) -> Trajectory:
    """Draw one object's path: it starts inside the frame, or enters from an edge (often
    after frame 0), or heads for an edge to leave; ``radius_range`` is in pixels."""
    roll = rng.random()
    mode = "enter" if roll < scene.late_start else ("leave" if roll < scene.late_start + scene.leave else "inside")
    start = int(rng.integers(1, length - MIN_LATE_FRAMES + 1)) if mode == "enter" else 0
    span = length - start
    radii = _sample_radii(rng, span, radius_range, scene)
    angles = rng.uniform(0, 2 * np.pi) + np.cumsum(_sample_spin(rng, span, scene))
    speeds = smooth_random(rng, span, scene.speed_knots, *(s * min(width, height) for s in scene.speed))
    turns = smooth_random(rng, span, scene.turn_knots, -scene.turn / 2, scene.turn / 2)
    origin, heading, speeds = _route(rng, mode, width, height, radii, speeds)
    headings = heading + turns - turns[0]
    steps = speeds[:, None] * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    steps[0] = 0.0
    path = origin + np.cumsum(steps, axis=0)
    return Trajectory(start, _pad_front(path, start), _pad_front(angles, start), _pad_front(radii, start))


def _route(rng, mode: str, width: int, height: int, radii: np.ndarray, speeds: np.ndarray):
    """Start point, initial heading and speed profile (sped up where needed) for ``mode``."""
    edge = int(rng.integers(4))
    if mode == "inside":
        return _inside_point(rng, width, height), rng.uniform(0, 2 * np.pi), speeds
    if mode == "enter":
        origin, outward = _edge_point(rng, edge, width, height, SHAPE_REACH * radii[0] + 1.0)
        heading = outward + np.pi + rng.uniform(-HEADING_SPREAD, HEADING_SPREAD)
        speeds = speeds * max(1.0, _enter_speed(radii[0], len(speeds)) / speeds[:ENTER_FRAMES].mean())
        return origin, heading, speeds
    speeds = speeds * max(1.0, _leave_speed(radii[-1], len(speeds), width, height) / speeds.mean())
    origin, heading = _leave_origin(rng, edge, width, height, speeds, radii[-1])
    return origin, heading, speeds


def _sample_radii(rng, span: int, radius_range: tuple[float, float], scene: SceneSpec) -> np.ndarray:
    """Radius curve inside ``radius_range`` that changes by at most ``scene.radius_change``."""
    low, high = np.log(radius_range[0]), np.log(radius_range[1])
    centre = rng.uniform(low, high)
    half = np.log(scene.radius_change) / 2
    return np.exp(smooth_random(rng, span, scene.radius_knots, max(low, centre - half), min(high, centre + half)))


def _sample_spin(rng, span: int, scene: SceneSpec) -> np.ndarray:
    """Angular speed per frame (radians), one sign per object."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    spin = sign * smooth_random(rng, span, scene.turn_knots, *scene.spin)
    spin[0] = 0.0
    return spin


def _inside_point(rng, width: int, height: int) -> np.ndarray:
    return np.array([rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height])


def _edge_point(rng, edge: int, width: int, height: int, outside: float) -> tuple[np.ndarray, float]:
    """A point ``outside`` pixels beyond edge ``edge`` (0 left, 1 top, 2 right, 3 bottom)
    and the outward normal's angle."""
    along = rng.uniform(0.15, 0.85)
    points = {
        0: ([-outside, along * height], np.pi),
        1: ([along * width, -outside], -np.pi / 2),
        2: ([width + outside, along * height], 0.0),
        3: ([along * width, height + outside], np.pi / 2),
    }
    point, normal = points[edge]
    return np.array(point), normal


def _enter_speed(radius: float, span: int) -> float:
    """Mean speed an entering object needs to get ``ENTER_DEPTH`` radii into the frame in time."""
    distance = SHAPE_REACH * radius + 1.0 + ENTER_DEPTH * radius
    return distance / (np.cos(HEADING_SPREAD) * min(span - 1, ENTER_FRAMES))


def _leave_speed(radius: float, span: int, width: int, height: int) -> float:
    """Mean speed a leaving object needs to get out from the edge of the start region."""
    distance = 0.1 * min(width, height) + SHAPE_REACH * radius + 2.0
    return distance / (0.9 * np.cos(HEADING_SPREAD) * (span - 1))


def _leave_origin(rng, edge: int, width: int, height: int, speeds: np.ndarray, radius: float):
    """Start point and heading of an object that should be past ``edge`` by its last frame.

    Walks back from just beyond the edge along the heading by most of the distance
    the speed profile covers, then keeps the start inside the frame.
    """
    exit_point, normal = _edge_point(rng, edge, width, height, SHAPE_REACH * radius + 2.0)
    heading = normal + rng.uniform(-HEADING_SPREAD, HEADING_SPREAD)
    travel = 0.9 * speeds[1:].sum()
    origin = exit_point - travel * np.array([np.cos(heading), np.sin(heading)])
    origin = np.clip(origin, [0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height])
    return origin, heading


def _pad_front(values: np.ndarray, start: int) -> np.ndarray:
    """Prefix ``start`` NaN rows so a curve over frames ``start..T-1`` covers ``0..T-1``."""
    pad = np.full((start,) + values.shape[1:], np.nan)
    return np.concatenate([pad, values], axis=0)
