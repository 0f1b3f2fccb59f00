"""Camera-side degradations applied to a rendered frame: blur, brightness flicker, sensor noise.

They change what the frame looks like, never the annotations: masks are the
shapes' pixels before any of this (a blurred edge is still annotated crisply).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.ndimage import gaussian_filter

from tubelets.synth.motion import smooth_random
from tubelets.synth.spec import SceneSpec

FLICKER_OFFSET = 12.0  # largest additive brightness change with full flicker, grey levels


@dataclasses.dataclass(frozen=True)
class Effects:
    """Per-frame settings, each ``float64 [T]``: Gaussian ``blur`` sigma (pixels, 0 is
    none), brightness ``gain`` and ``offset`` (``pixel * gain + offset``), and the std of
    additive Gaussian ``noise``."""

    blur: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    noise: np.ndarray


def sample_effects(rng: np.random.Generator, length: int, scene: SceneSpec) -> Effects:
    """Draw one video's degradations: blur drifts smoothly, flicker jumps frame to frame."""
    blur = smooth_random(rng, length, 4, *scene.blur) if scene.blur[1] > 0 else np.zeros(length)
    gain = 1.0 + rng.uniform(-scene.flicker, scene.flicker, length)
    offset = rng.uniform(-1.0, 1.0, length) * FLICKER_OFFSET * (scene.flicker > 0)
    noise = np.full(length, rng.uniform(*scene.sensor_noise))
    return Effects(blur, gain, offset, noise)


def apply_effects(frame: np.ndarray, index: int, effects: Effects, rng: np.random.Generator) -> np.ndarray:
    """Degrade frame ``index`` (``float32 [H, W, 3]``, 0-255) into ``uint8 [H, W, 3]``."""
    sigma = effects.blur[index]
    if sigma > 0:
        frame = gaussian_filter(frame, sigma=(sigma, sigma, 0), mode="nearest")
    else:
        frame = frame.copy()
    if effects.gain[index] != 1 or effects.offset[index] != 0:
        frame *= np.float32(effects.gain[index])
        frame += np.float32(effects.offset[index])
    if effects.noise[index] > 0:
        noise = rng.standard_normal(frame.shape, dtype=np.float32)
        noise *= np.float32(effects.noise[index])
        frame += noise
    np.rint(frame, out=frame)
    return np.clip(frame, 0, 255, out=frame).astype(np.uint8)
