"""Colours and fills (solid, two-colour stripes, colour noise) for objects and clutter.

Objects and background clutter draw their fills from the same distributions, and a
category never implies a colour, so telling objects from clutter and one category
from another takes shape, not colour. Colours are ``float`` RGB in ``[0, 255]``.
"""

from __future__ import annotations

import colorsys
import dataclasses

import numpy as np

from tubelets.synth import spec
from tubelets.synth.shapes import SHAPE_REACH

# Smallest RGB distance between a fill's main colour and the background's mean: enough
# to see the object, small enough that some objects are low-contrast.
MIN_CONTRAST = 60.0
MIN_STRIPE_CONTRAST = 50.0
NOISE_CELL_PX = (1.5, 3.0)
NOISE_STD = (18.0, 40.0)


@dataclasses.dataclass(frozen=True)
class Fill:
    """How an object's pixels are coloured; the pattern is fixed to the object.

    ``colours`` is ``float [2, 3]``: the main colour and, for stripes, the second one.
    Stripes run at ``angle`` (radians, in the object's local frame) with a full
    period of ``period`` pixels. ``texture`` (noise only) is ``float [K, K, 3]`` cells
    covering the object's local square ``[-SHAPE_REACH, SHAPE_REACH]**2``.
    """

    kind: str
    colours: np.ndarray
    period: float = 0.0
    angle: float = 0.0
    texture: np.ndarray | None = None


def sample_colour(rng: np.random.Generator) -> np.ndarray:
    """A random colour, ``float [3]``, neither black nor washed out."""
    hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.25, 0.95), rng.uniform(0.3, 0.95)
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value)) * 255.0


def sample_contrasting_colour(rng: np.random.Generator, against: np.ndarray, min_distance: float) -> np.ndarray:
    """A random colour at least ``min_distance`` (RGB) from ``against``.

    Rejection sampling; after many failures (``against`` mid-grey with a large
    distance asked for) the best candidate seen is returned.
    """
    best, best_distance = None, -1.0
    for _ in range(100):
        colour = sample_colour(rng)
        distance = float(np.linalg.norm(colour - against))
        if distance >= min_distance:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def sample_fill(rng: np.random.Generator, background: np.ndarray, radius: float) -> Fill:
    """A fill whose main colour stands out from ``background`` (``float [3]``).

    ``radius`` (pixels) sizes the noise texture so its cells are 1.5-3 px at that radius.
    """
    kind = spec.FILL_KINDS[rng.integers(len(spec.FILL_KINDS))]
    main = sample_contrasting_colour(rng, background, MIN_CONTRAST)
    if kind == "solid":
        return Fill(kind, np.stack([main, main]))
    if kind == "stripes":
        second = sample_contrasting_colour(rng, main, MIN_STRIPE_CONTRAST)
        period, angle = rng.uniform(*spec.STRIPE_PERIOD_PX), rng.uniform(0, np.pi)
        return Fill(kind, np.stack([main, second]), period=float(period), angle=float(angle))
    cells = int(np.ceil(2 * SHAPE_REACH * radius / rng.uniform(*NOISE_CELL_PX)))
    texture = np.clip(main + rng.normal(0.0, rng.uniform(*NOISE_STD), (cells, cells, 3)), 0, 255)
    return Fill(kind, np.stack([main, main]), texture=texture)


def fill_colours(fill: Fill, u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """Colours ``float32 [N, 3]`` of pixels at normalised local coordinates ``u, v`` (``[N]``).

    ``radius`` is the object's current radius in pixels: stripes keep their period in
    pixels as the object scales, noise cells scale with it.
    """
    if fill.kind == "solid":
        return np.broadcast_to(fill.colours[0], (len(u), 3)).astype(np.float32)
    if fill.kind == "stripes":
        across = (u * np.cos(fill.angle) + v * np.sin(fill.angle)) * radius
        band = np.floor(across / (fill.period / 2)).astype(np.int64) % 2
        return fill.colours[band].astype(np.float32)
    cells = fill.texture.shape[0]
    row = np.clip(((v + SHAPE_REACH) / (2 * SHAPE_REACH) * cells).astype(np.int64), 0, cells - 1)
    col = np.clip(((u + SHAPE_REACH) / (2 * SHAPE_REACH) * cells).astype(np.int64), 0, cells - 1)
    return fill.texture[row, col].astype(np.float32)
