"""Another domain's look: palette, background texture, lighting, lens blur, sensor noise, compression.

A domain other than the source one renders the very scene the source domain would
(its own generator, spawned from the video's, draws everything here, so the scene's
draws and hence every annotation stay the same) and changes only the pixels:

1. the background canvas gains a woven texture (before objects are painted: objects keep their fills);
2. each painted frame is recoloured (chroma scaled and rotated about the grey axis, a white-balance
   cast), lit unevenly (exposure, a linear gradient, a vignette) and blurred;
3. after the scene's own effects, extra sensor noise and a low-quality JPEG round trip.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.spatial.transform import Rotation

from tubelets.synth.background import Background
from tubelets.synth.spec import DomainSpec

# Rec. 601 luma weights: desaturating keeps each pixel's luma.
LUMA = np.array([0.299, 0.587, 0.114])
GREY_AXIS = np.ones(3) / np.sqrt(3.0)
JPEG_SUBSAMPLING_420 = 2


@dataclasses.dataclass(frozen=True)
class Look:
    """One video's sampled look. ``colour`` is ``float32 [3, 3]`` (``rgb @ colour.T``), ``light``
    ``float32 [H, W, 1]`` a gain field, ``blur`` a sigma in pixels, ``noise`` a std in grey levels,
    ``quality`` a JPEG quality; ``rng`` draws each frame's noise (the look's own generator)."""

    colour: np.ndarray
    light: np.ndarray
    blur: float
    noise: float
    quality: int
    rng: np.random.Generator


def sample_look(rng: np.random.Generator, height: int, width: int, domain: DomainSpec) -> Look:
    """Draw one video's palette, lighting and camera settings from ``domain``'s ranges."""
    saturation = rng.uniform(*domain.saturation)
    desaturate = saturation * np.eye(3) + (1.0 - saturation) * np.outer(np.ones(3), LUMA)
    hue = Rotation.from_rotvec(rng.uniform(*domain.hue_rotation) * GREY_AXIS).as_matrix()
    balance = np.asarray(domain.white_balance) + rng.uniform(-1, 1, 3) * domain.white_balance_jitter
    colour = np.diag(balance) @ desaturate @ hue
    return Look(
        colour=colour.astype(np.float32),
        light=_light_field(rng, height, width, domain),
        blur=float(rng.uniform(*domain.blur)),
        noise=float(rng.uniform(*domain.sensor_noise)),
        quality=int(rng.integers(domain.jpeg_quality[0], domain.jpeg_quality[1] + 1)),
        rng=rng,
    )


def _light_field(rng: np.random.Generator, height: int, width: int, domain: DomainSpec) -> np.ndarray:
    """``float32 [H, W, 1]``: exposure x (1 + gradient along a random direction) x (1 - vignette r^2)."""
    rows, cols = np.mgrid[0:height, 0:width]
    y, x = (rows + 0.5) / height * 2 - 1, (cols + 0.5) / width * 2 - 1  # both in [-1, 1]
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 1.0 + rng.uniform(*domain.light_gradient) * (x * np.cos(angle) + y * np.sin(angle)) / np.sqrt(2)
    vignette = 1.0 - rng.uniform(*domain.vignette) * (x**2 + y**2) / 2
    return (rng.uniform(*domain.exposure) * gradient * vignette)[..., None].astype(np.float32)


def texture_background(rng: np.random.Generator, background: Background, domain: DomainSpec) -> Background:
    """``background`` with a woven texture (two crossing gratings of one period) added to its canvas."""
    height, width = background.pixels.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width]
    period, angle = rng.uniform(*domain.texture_period_px), rng.uniform(0, np.pi)
    weave = np.ones((height, width))
    for direction in (angle, angle + np.pi / 2):
        weave *= np.sin(2 * np.pi * (cols * np.cos(direction) + rows * np.sin(direction)) / period)
    texture = rng.uniform(*domain.texture_contrast) * weave
    pixels = np.clip(background.pixels + texture[..., None].astype(np.float32), 0, 255)
    return dataclasses.replace(background, pixels=pixels)


def shade(canvas: np.ndarray, look: Look) -> np.ndarray:
    """The painted frame (``float32 [H, W, 3]``, 0-255) recoloured, lit and blurred (a new array)."""
    frame = (canvas @ look.colour.T) * look.light
    if look.blur > 0:
        frame = gaussian_filter(frame, sigma=(look.blur, look.blur, 0), mode="nearest")
    return frame.astype(np.float32, copy=False)


def degrade(frame: np.ndarray, look: Look) -> np.ndarray:
    """``uint8 [H, W, 3]`` with extra sensor noise and the camera's JPEG compression."""
    noisy = frame + look.rng.normal(0.0, look.noise, frame.shape)
    noisy = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=look.quality, subsampling=JPEG_SUBSAMPLING_420)
    return np.asarray(Image.open(buffer).convert("RGB"))
