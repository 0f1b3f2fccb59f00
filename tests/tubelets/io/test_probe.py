import dataclasses
import os

import numpy as np
import pytest

from tubelets.errors import VideoDecodeError
from tubelets.io.ffmpeg_binary import ffprobe_binary
from tubelets.io.probe import clockwise_rotation, probe, probe_with_ffmpeg, probe_with_ffprobe


def test_probe_reports_size_rate_count_duration_codec(testsrc_video):
    info = probe(str(testsrc_video))
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(10.0)
    assert info.frame_count == 12
    assert info.duration == pytest.approx(1.2, abs=0.05)
    assert info.rotation == 0
    assert info.codec == "h264"
    assert info.url == str(testsrc_video)


def test_frame_count_is_exact_for_odd_rate_and_count(media_dir, media):
    path = media.encode_frames(media.pattern_frames(13), media_dir / "thirteen.mp4", 7)
    info = probe(str(path))
    assert info.frame_count == 13
    assert info.fps == pytest.approx(7.0)


@pytest.mark.parametrize("ccw, clockwise, size", [(90, 270, (48, 64)), (180, 180, (64, 48)), (270, 90, (48, 64))])
def test_rotation_is_clockwise_and_size_is_display_size(rotated_videos, ccw, clockwise, size):
    info = probe(str(rotated_videos[ccw]))
    assert info.rotation == clockwise
    assert (info.width, info.height) == size
    assert info.frame_count == 24


@pytest.mark.parametrize("degrees, snapped", [(0, 0), (90, 90), (-90, 270), (-180, 180), (89.9, 90), (360, 0)])
def test_clockwise_rotation_snaps_to_quarter_turns(degrees, snapped):
    assert clockwise_rotation(degrees) == snapped


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, pattern_video, faststart_video, media):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.txt").write_text("hello, this is not a video\n")
    (folder / "text.mp4").write_text("hello, this is not a video either\n")
    (folder / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    media.run_ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(folder / "audio.m4a"))
    for source, name in ((pattern_video, "cut_moov_at_end.mp4"), (faststart_video, "cut_faststart.mp4")):
        data = source.read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return folder


@pytest.mark.parametrize(
    "name, reason",
    [
        ("nothing_here.mp4", "missing"),
        ("empty.mp4", "empty"),
        ("notes.txt", "not_a_video"),
        ("text.mp4", "not_a_video"),
        ("random.mp4", "not_a_video"),
        ("audio.m4a", "no_video_stream"),
        ("cut_moov_at_end.mp4", "truncated"),
        ("cut_faststart.mp4", "truncated"),
    ],
)
def test_bad_input_raises_video_decode_error_with_reason(bad_inputs, name, reason):
    url = str(bad_inputs / name)
    with pytest.raises(VideoDecodeError) as caught:
        probe(url)
    assert caught.value.reason == reason
    assert caught.value.path == url
    assert name in str(caught.value)


def test_folder_is_reported_missing(tmp_path):
    with pytest.raises(VideoDecodeError) as caught:
        probe(str(tmp_path))
    assert caught.value.reason == "missing"


def _available_ffprobe():
    return ffprobe_binary() or os.environ.get("TUBELETS_TEST_FFPROBE")


@pytest.mark.skipif(_available_ffprobe() is None, reason="no ffprobe (set TUBELETS_TEST_FFPROBE to test this path)")
def test_ffprobe_and_ffmpeg_paths_agree(pattern_video, rotated_videos, bad_inputs):
    ffprobe = _available_ffprobe()
    for path in (str(pattern_video), str(rotated_videos[90])):
        by_ffprobe, by_ffmpeg = probe_with_ffprobe(path, path, ffprobe), probe_with_ffmpeg(path, path)
        assert by_ffprobe.duration == pytest.approx(by_ffmpeg.duration, abs=0.05)
        assert dataclasses.replace(by_ffmpeg, duration=by_ffprobe.duration) == by_ffprobe
    for name in ("notes.txt", "random.mp4", "audio.m4a", "cut_moov_at_end.mp4", "cut_faststart.mp4"):
        path = str(bad_inputs / name)
        reasons = []
        for attempt in (lambda: probe_with_ffprobe(path, path, ffprobe), lambda: probe_with_ffmpeg(path, path)):
            with pytest.raises(VideoDecodeError) as caught:
                attempt()
            reasons.append(caught.value.reason)
        assert reasons[0] == reasons[1], name
