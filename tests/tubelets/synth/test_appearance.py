import numpy as np
import pytest

from tubelets.synth import appearance, spec
from tubelets.synth.appearance import Fill


def sample_fills(kind: str, count: int = 50, seed: int = 0) -> list[Fill]:
    rng = np.random.default_rng(seed)
    fills = []
    while len(fills) < count:
        fill = appearance.sample_fill(rng, np.array([120.0, 90.0, 60.0]), radius=20.0)
        if fill.kind == kind:
            fills.append(fill)
    return fills


def test_all_fill_kinds_occur_and_contrast_with_the_background():
    rng = np.random.default_rng(3)
    background = np.array([40.0, 160.0, 90.0])
    fills = [appearance.sample_fill(rng, background, radius=15.0) for _ in range(300)]
    assert {f.kind for f in fills} == set(spec.FILL_KINDS)
    distances = [np.linalg.norm(f.colours[0] - background) for f in fills]
    assert min(distances) >= appearance.MIN_CONTRAST
    # Not trivially separable either: some fills are close to the contrast floor.
    assert np.percentile(distances, 10) < 2 * appearance.MIN_CONTRAST


def test_colours_are_valid_rgb():
    rng = np.random.default_rng(4)
    colours = np.array([appearance.sample_colour(rng) for _ in range(500)])
    assert colours.min() >= 0 and colours.max() <= 255
    assert colours.max(axis=1).min() >= 0.3 * 255 - 1e-6  # never near-black


def test_contrasting_colour_returns_the_best_try_when_the_distance_is_impossible():
    colour = appearance.sample_contrasting_colour(np.random.default_rng(0), np.full(3, 128.0), 1000.0)
    assert colour.shape == (3,) and np.linalg.norm(colour - 128.0) > 100


def test_solid_fill_is_one_colour():
    fill = sample_fills("solid", count=1)[0]
    colours = appearance.fill_colours(fill, np.linspace(-1, 1, 30), np.zeros(30), radius=25.0)
    assert colours.dtype == np.float32 and colours.shape == (30, 3)
    assert np.all(colours == fill.colours[0].astype(np.float32))


def test_stripes_alternate_every_half_period_in_pixels():
    for fill in sample_fills("stripes", count=20):
        assert spec.STRIPE_PERIOD_PX[0] <= fill.period <= spec.STRIPE_PERIOD_PX[1]
        assert np.linalg.norm(fill.colours[0] - fill.colours[1]) >= appearance.MIN_STRIPE_CONTRAST
        radius = 30.0
        across = np.arange(0.25, 40.0, 0.5)  # pixels along the stripe normal
        u, v = across * np.cos(fill.angle) / radius, across * np.sin(fill.angle) / radius
        colours = appearance.fill_colours(fill, u, v, radius)
        is_main = np.all(colours == fill.colours[0].astype(np.float32), axis=1)
        changes = np.flatnonzero(np.diff(is_main))
        assert len(changes) >= 2
        np.testing.assert_allclose(np.diff(changes) * 0.5, fill.period / 2, atol=0.5)


def test_noise_fill_varies_and_sticks_to_the_object():
    fill = sample_fills("noise", count=1)[0]
    assert fill.texture.shape[0] == fill.texture.shape[1] and fill.texture.shape[2] == 3
    u, v = np.random.default_rng(1).uniform(-1, 1, (2, 400))
    colours = appearance.fill_colours(fill, u, v, radius=20.0)
    assert colours.std(axis=0).mean() > 10
    # The same local point has the same colour whatever the object's size (the texture scales).
    np.testing.assert_array_equal(colours, appearance.fill_colours(fill, u, v, radius=35.0))


@pytest.mark.parametrize("kind", spec.FILL_KINDS)
def test_fills_handle_no_pixels(kind):
    fill = sample_fills(kind, count=1)[0]
    assert appearance.fill_colours(fill, np.zeros(0), np.zeros(0), 10.0).shape == (0, 3)
