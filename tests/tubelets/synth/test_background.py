import numpy as np

from tubelets.synth import background
from tubelets.synth.spec import DEFAULT_SPEC, HARD_SPEC


def test_canvas_covers_every_camera_offset():
    camera = np.array([[0.0, 0.0], [-7.4, 3.2], [12.6, -9.5], [30.0, 0.4]])
    canvas = background.make_background(np.random.default_rng(0), 48, 64, camera, DEFAULT_SPEC)
    assert canvas.pixels.dtype == np.float32
    for offset in camera:
        view = canvas.crop(offset, 48, 64)
        assert view.shape == (48, 64, 3)
    # A pan by (dx, dy) shows the same content shifted by (-dx, -dy).
    a, b = canvas.crop(np.array([0.0, 0.0]), 48, 64), canvas.crop(np.array([5.0, 2.0]), 48, 64)
    np.testing.assert_array_equal(a[2:, 5:], b[:-2, :-5])


def test_background_has_smooth_field_and_clutter():
    canvas = background.make_background(np.random.default_rng(1), 192, 256, np.zeros((5, 2)), HARD_SPEC)
    pixels = canvas.pixels
    assert pixels.min() >= 0 and pixels.max() <= 255
    # Clutter paints sharp edges into the smooth field: some neighbouring pixels jump a lot.
    jumps = np.abs(np.diff(pixels, axis=1)).sum(axis=2)
    assert (jumps > 80).sum() > 200
    assert np.median(jumps) < 30


def test_blob_outlines_are_lumpy_not_elliptic():
    rng = np.random.default_rng(2)
    for _ in range(50):
        outline = background.blob_outline(rng)
        radius = np.hypot(outline[:, 0], outline[:, 1])
        assert radius.max() == 1.0 and radius.min() > 0.25
        # Odd harmonics break the point symmetry every ellipse (and box, cross, ring) has.
        opposite = np.roll(radius, len(radius) // 2)
        assert np.abs(radius - opposite).max() > 0.1


def test_background_is_deterministic():
    def make():
        return background.make_background(np.random.default_rng(9), 40, 40, np.zeros((3, 2)), DEFAULT_SPEC).pixels

    np.testing.assert_array_equal(make(), make())
