import json

import numpy as np
import pytest

from tubelets.cli import build_parser, main
from tubelets.synth import domain, generate_dataset, generate_video, spec, video_rng

WIDTH, HEIGHT = 64, 48


def chroma(frames: np.ndarray) -> float:
    """Mean distance of a pixel's channels from their mean: 0 for grey, large for vivid colours."""
    pixels = frames.astype(float)
    return float(np.abs(pixels - pixels.mean(axis=-1, keepdims=True)).mean())


@pytest.fixture(scope="module")
def pairs():
    """The same seeds rendered in both domains, default and hard."""
    return [
        (generate_video(video_rng(5, k), WIDTH, HEIGHT, hard), generate_video(video_rng(5, k), WIDTH, HEIGHT, hard,
                                                                              domain="shifted"))
        for k, hard in ((0, False), (1, False), (2, True))
    ]


def test_the_source_domain_is_the_default_rendering():
    default = generate_video(video_rng(9, 0), WIDTH, HEIGHT)
    source = generate_video(video_rng(9, 0), WIDTH, HEIGHT, domain="source")
    np.testing.assert_array_equal(default.frames, source.frames)
    assert default.domain == source.domain == "source"


def test_a_shifted_video_is_the_same_scene(pairs):
    for source, shifted in pairs:
        assert shifted.domain == "shifted" and shifted.length == source.length
        np.testing.assert_array_equal(shifted.camera, source.camera)
        assert [i.category_id for i in shifted.instances] == [i.category_id for i in source.instances]
        for a, b in zip(source.instances, shifted.instances):
            assert a.visible_frames == b.visible_frames
            np.testing.assert_array_equal(a.mask_array(), b.mask_array())


def test_shifted_frames_differ_in_colour_statistics(pairs):
    for source, shifted in pairs:
        assert not np.array_equal(source.frames, shifted.frames)
        # Washed out (a third to a half of the chroma, then a cast) and dimmer.
        assert chroma(shifted.frames) < 0.75 * chroma(source.frames)
        assert shifted.frames.mean() < source.frames.mean() - 5
        # The hue turns: the channel means no longer line up with the source's.
        source_means = source.frames.reshape(-1, 3).mean(axis=0)
        shifted_means = shifted.frames.reshape(-1, 3).mean(axis=0)
        assert np.abs((shifted_means - shifted_means.mean()) - (source_means - source_means.mean())).max() > 3


def test_shifted_frames_are_deterministic_for_a_seed():
    a = generate_video(video_rng(4, 0), WIDTH, HEIGHT, domain="shifted")
    b = generate_video(video_rng(4, 0), WIDTH, HEIGHT, domain="shifted")
    np.testing.assert_array_equal(a.frames, b.frames)


def test_look_stays_in_the_domain_ranges():
    shifted = spec.domain_spec("shifted")
    look = domain.sample_look(np.random.default_rng(0), HEIGHT, WIDTH, shifted)
    assert shifted.blur[0] <= look.blur <= shifted.blur[1]
    assert shifted.jpeg_quality[0] <= look.quality <= shifted.jpeg_quality[1]
    low = shifted.exposure[0] * (1 - shifted.light_gradient[1]) * (1 - shifted.vignette[1])
    assert look.light.min() >= low - 1e-6 and look.light.max() <= shifted.exposure[1] * (1 + shifted.light_gradient[1])
    grey = np.full((1, 3), 100.0, dtype=np.float32)
    # A grey stays nearly grey: the palette turns chroma about the grey axis, only the cast tints it.
    tinted = grey @ look.colour.T
    assert np.abs(tinted / 100 - np.asarray(shifted.white_balance)).max() <= shifted.white_balance_jitter + 1e-5


def test_unknown_domains_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="unknown domain"):
        generate_dataset(str(tmp_path / "x"), videos=1, width=WIDTH, height=HEIGHT, domain="night")
    assert not (tmp_path / "x" / "instances.json").exists()


def test_synth_cli_writes_a_shifted_data_set_that_says_so(tmp_path):
    source, shifted = tmp_path / "source", tmp_path / "shifted"
    for root, extra in ((source, []), (shifted, ["--domain", "shifted"])):
        assert main(["synth", str(root), "--videos", "1", "--seed", "3", "--width", str(WIDTH), "--height",
                     str(HEIGHT), *extra]) == 0
    source_gt, shifted_gt = (json.loads((root / "instances.json").read_text()) for root in (source, shifted))
    assert "domain" not in source_gt["info"]  # a source set's instances.json is what it always was
    assert shifted_gt["info"]["domain"] == "shifted"
    assert shifted_gt["annotations"] == source_gt["annotations"]
    assert (shifted / "videos" / "video_0000.mp4").stat().st_size > 0
    assert (shifted / "JPEGImages" / "video_0000" / "00000.jpg").read_bytes() != (
        source / "JPEGImages" / "video_0000" / "00000.jpg").read_bytes()


def test_the_cli_offers_every_domain_of_the_spec():
    synth = build_parser()._subparsers._group_actions[0].choices["synth"]
    choices = next(a.choices for a in synth._actions if a.dest == "domain")
    assert tuple(choices) == tuple(spec.DOMAINS)


def test_the_training_variety_stops_short_of_the_shifted_look():
    # "shifted" is the unseen look the detector is checked on: the training look "varied" may turn hues
    # anywhere, but on every other axis it must stay on the source side of shifted's ranges.
    varied, shifted = spec.domain_spec("varied"), spec.domain_spec("shifted")
    assert varied.saturation[0] > shifted.saturation[1] and varied.exposure[0] > shifted.exposure[1]
    for milder in ("light_gradient", "vignette", "texture_contrast", "blur", "sensor_noise"):
        assert getattr(varied, milder)[1] < getattr(shifted, milder)[1], milder
    assert varied.jpeg_quality[0] > shifted.jpeg_quality[1]
