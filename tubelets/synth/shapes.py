"""The six Shapes-VIS categories as exact boolean masks.

A shape lives in a *normalised local frame* ``(u, v)``: the object centre is the
origin, the shape's own rotation is undone, and lengths are in units of the object
radius ``R``. Every shape fits in the unit disc except the cross, whose arm corners
reach ``sqrt(1 + w**2) < 1.1``. What ``R`` measures per category:

* disc: an ellipse with semi-axes ``R`` (along ``u``) and ``axis_ratio * R``;
* box: a rectangle whose half-diagonal is ``R`` and ``width / height = aspect``;
* triangle: three vertices at ``0.85-1 R`` from the centre, near 120 degrees apart;
* star: five outer points at ``R``, five inner corners at ``inner_ratio * R``;
* ring: an annulus with outer radius ``R`` and hole radius ``inner_ratio * R``;
* cross: two perpendicular arms, each ``2 R`` long (the span) and
  ``arm_width * 2 R`` wide.

Rasterisation is aliasing-free: a pixel belongs to a shape iff its centre does
(pixel ``(row y, column x)`` has its centre at image point ``(x + 0.5, y + 0.5)``),
so the mask is exactly the set of pixels the renderer paints.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from tubelets.synth import spec

# Largest distance from the centre (in units of R) that any shape reaches.
SHAPE_REACH = 1.1


@dataclasses.dataclass(frozen=True)
class Shape:
    """A category and the parameters of one instance's outline.

    ``params`` keys by category: disc ``axis_ratio``; box ``aspect``; star and ring
    ``inner_ratio``; cross ``arm_width``; triangle ``vertices``, a tuple of three
    ``(u, v)`` points in the normalised local frame.
    """

    category_id: int
    params: dict


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a shape is in one frame: centre ``(x, y)`` in image pixels (continuous,
    origin at the top-left corner of the top-left pixel), rotation ``angle`` in radians
    (counter-clockwise in the ``(u, v)`` frame, clockwise on screen since y points
    down), and ``radius`` ``R`` in pixels."""

    x: float
    y: float
    angle: float
    radius: float


@dataclasses.dataclass(frozen=True)
class Raster:
    """A shape drawn into an ``(H, W)`` frame.

    ``mask`` is ``bool [H, W]``; ``u`` and ``v`` are ``float64 [N]`` local coordinates
    (units of ``R``) of its ``N`` pixels in the row-major order of ``frame[mask]``,
    for texturing.
    """

    mask: np.ndarray
    u: np.ndarray
    v: np.ndarray


def sample_shape(rng: np.random.Generator, category_id: int) -> Shape:
    """Draw one instance's outline parameters from the spec ranges."""
    name = spec.CATEGORY_NAMES[category_id]
    if name == "triangle":
        return Shape(category_id, {"vertices": _sample_triangle(rng)})
    key, bounds = _RATIO_PARAMS[name]
    return Shape(category_id, {key: float(rng.uniform(*bounds))})


def _sample_triangle(rng: np.random.Generator) -> tuple:
    """Three vertices near an equilateral layout, so a triangle never degenerates to a sliver."""
    angles = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
    angles = angles + rng.uniform(-spec.TRIANGLE_ANGLE_JITTER, spec.TRIANGLE_ANGLE_JITTER, 3)
    radii = rng.uniform(*spec.TRIANGLE_VERTEX_RADIUS, 3)
    return tuple((float(r * np.cos(a)), float(r * np.sin(a))) for r, a in zip(radii, angles))


def star_vertices(inner_ratio: float, points: int = spec.STAR_POINTS) -> np.ndarray:
    """``float64 [2 * points, 2]`` star outline, outer and inner corners alternating."""
    angles = np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner_ratio)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def inside_star_shaped_polygon(u: np.ndarray, v: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Whether points lie in a polygon that is star-shaped about the origin.

    Any ray from the origin crosses the boundary once, so a point is inside iff it
    lies on the origin's side of the one edge spanning its polar angle; this is
    exact for the concave star, unlike a convex half-plane test.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    order = np.argsort(np.arctan2(vertices[:, 1], vertices[:, 0]))
    vertices = vertices[order]
    vertex_angles = np.arctan2(vertices[:, 1], vertices[:, 0])
    start = (np.searchsorted(vertex_angles, np.arctan2(v, u), side="right") - 1) % len(vertices)
    a, b = vertices[start], vertices[(start + 1) % len(vertices)]
    edge_u, edge_v = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]
    point_side = edge_u * (v - a[..., 1]) - edge_v * (u - a[..., 0])
    origin_side = edge_u * (-a[..., 1]) - edge_v * (-a[..., 0])
    return point_side * origin_side >= 0


def _inside_disc(u, v, params):
    return u**2 + (v / params["axis_ratio"]) ** 2 <= 1.0


def _inside_box(u, v, params):
    aspect = params["aspect"]
    half_width, half_height = aspect / np.hypot(aspect, 1.0), 1.0 / np.hypot(aspect, 1.0)
    return (np.abs(u) <= half_width) & (np.abs(v) <= half_height)


def _inside_triangle(u, v, params):
    return inside_star_shaped_polygon(u, v, np.asarray(params["vertices"]))


def _inside_star(u, v, params):
    return inside_star_shaped_polygon(u, v, star_vertices(params["inner_ratio"]))


def _inside_ring(u, v, params):
    distance = np.hypot(u, v)
    return (distance <= 1.0) & (distance >= params["inner_ratio"])


def _inside_cross(u, v, params):
    half_arm = params["arm_width"]  # arm_width * span / 2, with span 2 in units of R
    horizontal = (np.abs(u) <= 1.0) & (np.abs(v) <= half_arm)
    vertical = (np.abs(v) <= 1.0) & (np.abs(u) <= half_arm)
    return horizontal | vertical


_INSIDE: dict[str, Callable[[np.ndarray, np.ndarray, dict], np.ndarray]] = {
    "disc": _inside_disc,
    "box": _inside_box,
    "triangle": _inside_triangle,
    "star": _inside_star,
    "ring": _inside_ring,
    "cross": _inside_cross,
}
_RATIO_PARAMS = {
    "disc": ("axis_ratio", spec.DISC_AXIS_RATIO),
    "box": ("aspect", spec.BOX_ASPECT),
    "star": ("inner_ratio", spec.STAR_INNER_RATIO),
    "ring": ("inner_ratio", spec.RING_INNER_RATIO),
    "cross": ("arm_width", spec.CROSS_ARM_WIDTH),
}


def inside(shape: Shape, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``bool`` array: which normalised local points ``(u, v)`` the shape covers."""
    return _INSIDE[spec.CATEGORY_NAMES[shape.category_id]](u, v, shape.params)


def rasterize(shape: Shape, placement: Placement, height: int, width: int) -> Raster:
    """Draw ``shape`` at ``placement`` into an ``(height, width)`` frame.

    Only the window around the object is evaluated; parts outside the frame are cut off.
    """
    mask = np.zeros((height, width), dtype=bool)
    reach = SHAPE_REACH * placement.radius + 1.0
    x0, x1 = max(int(placement.x - reach), 0), min(int(placement.x + reach) + 1, width)
    y0, y1 = max(int(placement.y - reach), 0), min(int(placement.y + reach) + 1, height)
    if x0 >= x1 or y0 >= y1:
        empty = np.zeros(0)
        return Raster(mask, empty, empty)
    dx = np.arange(x0, x1) + 0.5 - placement.x
    dy = np.arange(y0, y1)[:, None] + 0.5 - placement.y
    cos, sin = np.cos(placement.angle), np.sin(placement.angle)
    u = (dx * cos + dy * sin) / placement.radius
    v = (dy * cos - dx * sin) / placement.radius
    window = inside(shape, u, v)
    mask[y0:y1, x0:x1] = window
    return Raster(mask, u[window], v[window])
