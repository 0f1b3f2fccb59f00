"""Background canvases: a smooth colour field with grain, irregular blobs and lines.

The canvas is larger than the frame by the camera's largest excursion, so a
panning camera always has background to show. Clutter belongs to no category: blobs
are lumpy closed curves (random low harmonics, never a clean ellipse) and lines
are thin polylines, narrower than any cross arm. Clutter is filled like objects
(see ``appearance``), so colour alone cannot separate the two.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

from tubelets.synth import appearance, spec
from tubelets.synth.spec import SceneSpec

FIELD_KNOTS = (2, 5)  # colour field control grid, per axis
FIELD_VARIATION = 35.0  # std of the field's colour variation, grey levels
GRAIN_STD = (2.0, 7.0)
# Amplitude range of each harmonic of a blob's radius, relative to its mean radius: the
# low ones make lumpy, lopsided outlines (never a clean ellipse); the high ones stay weak so
# that blobs do not grow star points or cross arms.
BLOB_WOBBLE = {2: (0.1, 0.25), 3: (0.08, 0.18), 4: (0.0, 0.07), 5: (0.0, 0.05)}
BLOB_RADIUS = (0.5, 1.3)  # times the object radius range
LINE_WIDTH_PX = (1, 4)
LINE_POINTS = (2, 4)


@dataclasses.dataclass(frozen=True)
class Background:
    """``pixels`` is ``float32 [Hc, Wc, 3]`` RGB; frame pixel ``(0, 0)`` at camera
    offset zero is canvas pixel ``origin`` ``(row, col)``. ``mean_colour`` is the
    field's base colour ``float [3]`` (what object colours must contrast with)."""

    pixels: np.ndarray
    origin: tuple[int, int]
    mean_colour: np.ndarray

    def crop(self, offset: np.ndarray, height: int, width: int) -> np.ndarray:
        """The ``float32 [height, width, 3]`` view at camera ``offset`` ``(x, y)`` pixels."""
        row = self.origin[0] + int(round(offset[1]))
        col = self.origin[1] + int(round(offset[0]))
        return self.pixels[row : row + height, col : col + width].copy()


def make_background(
    rng: np.random.Generator, height: int, width: int, camera: np.ndarray, scene: SceneSpec
) -> Background:
    """A canvas covering every frame of a camera path ``camera`` (``float [T, 2]`` offsets)."""
    low, high = np.floor(camera.min(axis=0)).astype(int) - 1, np.ceil(camera.max(axis=0)).astype(int) + 1
    canvas_height, canvas_width = height + high[1] - low[1], width + high[0] - low[0]
    base = appearance.sample_colour(rng)
    pixels = _colour_field(rng, canvas_height, canvas_width, base)
    short_side = min(width, height)
    radius_range = [r * short_side for r in spec.OBJECT_RADIUS]
    for _ in range(int(rng.integers(scene.blobs[0], scene.blobs[1] + 1))):
        _draw_blob(rng, pixels, base, radius_range)
    for _ in range(int(rng.integers(scene.lines[0], scene.lines[1] + 1))):
        _draw_line(rng, pixels)
    return Background(pixels, (int(-low[1]), int(-low[0])), base)


def _colour_field(rng, height: int, width: int, base: np.ndarray) -> np.ndarray:
    """``float32 [H, W, 3]``: ``base`` plus a smooth random variation and fine grain."""
    rows, cols = (int(rng.integers(FIELD_KNOTS[0], FIELD_KNOTS[1] + 1)) for _ in range(2))
    knots = rng.normal(0.0, FIELD_VARIATION, (rows, cols, 3)).astype(np.float32)
    channels = [
        np.asarray(Image.fromarray(knots[..., c], mode="F").resize((width, height), Image.BICUBIC)) for c in range(3)
    ]
    grain = rng.normal(0.0, rng.uniform(*GRAIN_STD), (height, width, 3))
    return np.clip(base + np.stack(channels, axis=-1) + grain, 0, 255).astype(np.float32)


def blob_outline(rng: np.random.Generator, vertices: int = 72) -> np.ndarray:
    """``float64 [vertices, 2]`` closed wobbly outline around the origin, radius at most 1."""
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    radius = np.ones(vertices)
    for harmonic, amplitude in BLOB_WOBBLE.items():
        radius += rng.uniform(*amplitude) * np.cos(harmonic * angles + rng.uniform(0, 2 * np.pi))
    radius = np.maximum(radius, 0.3) / radius.max()
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _draw_blob(rng, pixels: np.ndarray, base: np.ndarray, radius_range) -> None:
    """Paint one filled blob anywhere on the canvas, in place."""
    height, width = pixels.shape[:2]
    radius = rng.uniform(*radius_range) * rng.uniform(*BLOB_RADIUS)
    centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])
    outline = centre + radius * blob_outline(rng)
    mask = _polygon_mask(height, width, outline)
    rows, cols = np.nonzero(mask)
    fill = appearance.sample_fill(rng, base, radius)
    u, v = (cols + 0.5 - centre[0]) / radius, (rows + 0.5 - centre[1]) / radius
    pixels[mask] = appearance.fill_colours(fill, u, v, radius)


def _draw_line(rng, pixels: np.ndarray) -> None:
    """Paint one thin solid polyline across the canvas, in place."""
    height, width = pixels.shape[:2]
    points = int(rng.integers(LINE_POINTS[0], LINE_POINTS[1] + 1))
    xy = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(points)]
    line_width = int(rng.integers(LINE_WIDTH_PX[0], LINE_WIDTH_PX[1] + 1))
    image = Image.new("1", (width, height), 0)
    ImageDraw.Draw(image).line(xy, fill=1, width=line_width, joint="curve")
    pixels[np.asarray(image, dtype=bool)] = appearance.sample_colour(rng)


def _polygon_mask(height: int, width: int, outline: np.ndarray) -> np.ndarray:
    """``bool [H, W]`` polygon rasterised by Pillow (clutter needs no exact geometry)."""
    image = Image.new("1", (width, height), 0)
    ImageDraw.Draw(image).polygon([tuple(p) for p in outline], fill=1)
    return np.asarray(image, dtype=bool)
