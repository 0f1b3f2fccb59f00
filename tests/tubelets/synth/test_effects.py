import numpy as np

from tubelets.synth import effects
from tubelets.synth.spec import DEFAULT_SPEC, HARD_SPEC


def test_default_videos_have_noise_but_no_blur_or_flicker():
    settings = effects.sample_effects(np.random.default_rng(0), 20, DEFAULT_SPEC)
    assert not settings.blur.any() and np.all(settings.gain == 1) and not settings.offset.any()
    assert np.all((settings.noise >= DEFAULT_SPEC.sensor_noise[0]) & (settings.noise <= DEFAULT_SPEC.sensor_noise[1]))


def test_hard_videos_blur_and_flicker():
    settings = effects.sample_effects(np.random.default_rng(0), 40, HARD_SPEC)
    assert settings.blur.min() >= HARD_SPEC.blur[0] and settings.blur.max() <= HARD_SPEC.blur[1]
    assert np.abs(settings.gain - 1).max() <= HARD_SPEC.flicker and np.std(settings.gain) > 0.03


def test_apply_effects_returns_uint8_and_blur_softens_edges():
    frame = np.zeros((32, 32, 3), dtype=np.float32)
    frame[:, 16:] = 200.0
    still = effects.Effects(np.zeros(2), np.ones(2), np.zeros(2), np.zeros(2))
    sharp = effects.apply_effects(frame, 0, still, np.random.default_rng(0))
    assert sharp.dtype == np.uint8 and sharp.shape == (32, 32, 3)
    np.testing.assert_array_equal(sharp, frame.astype(np.uint8))
    blurry = effects.Effects(np.full(2, 1.5), np.full(2, 1.1), np.full(2, 5.0), np.full(2, 3.0))
    soft = effects.apply_effects(frame, 1, blurry, np.random.default_rng(0))
    assert soft[:, 10:14].mean() > 0 and soft[:, :4].mean() > 2  # noise and offset lift the black
    assert np.abs(np.diff(soft[:, 12:20, 0].astype(float), axis=1)).max() < 120  # no hard step left
    assert soft[:, 24:].mean() > sharp[:, 24:].mean()  # gain 1.1 brightens
