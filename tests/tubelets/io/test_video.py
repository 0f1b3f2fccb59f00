import dataclasses
import gc
import subprocess
import threading
import time

import fsspec
import numpy as np
import pytest

from tubelets.errors import VideoDecodeError
from tubelets.io import video
from tubelets.io.probe import VideoInfo
from tubelets.io.video import iter_frames, output_size, read_frames


def assert_pattern(decoded, media, expected_indices):
    """Frames match pattern frames ``expected_indices`` (content and reported index)."""
    assert decoded.frame_indices.tolist() == expected_indices
    assert [media.frame_index_of(frame) for frame in decoded.frames] == expected_indices
    error = np.abs(decoded.frames.astype(int) - media.pattern_frames()[expected_indices].astype(int))
    assert error.mean() < 1.5 and np.percentile(error, 99) <= 8


def test_read_frames_returns_every_frame_in_order(pattern_video, media):
    decoded = read_frames(str(pattern_video))
    assert decoded.frames.shape == (24, 48, 64, 3) and decoded.frames.dtype == np.uint8
    assert decoded.frame_indices.dtype == np.int64
    assert decoded.info.frame_count == 24
    assert_pattern(decoded, media, list(range(24)))


def test_iter_frames_yields_writable_separate_arrays(pattern_video):
    frames = [frame for _, frame in iter_frames(str(pattern_video), end=2)]
    assert len(frames) == 2 and all(f.flags.writeable for f in frames)
    assert not np.shares_memory(frames[0], frames[1])


def test_stride_keeps_every_kth_frame(pattern_video, media):
    assert_pattern(read_frames(str(pattern_video), stride=5), media, [0, 5, 10, 15, 20])


def test_fps_picks_the_frame_shown_at_each_target_time(pattern_video, media):
    # 10 fps -> 4 fps: output frame k shows source frame floor(k * 2.5).
    assert_pattern(read_frames(str(pattern_video), fps=4), media, [0, 2, 5, 7, 10, 12, 15, 17, 20, 22])


def test_fps_counts_time_from_start(pattern_video, media):
    assert_pattern(read_frames(str(pattern_video), fps=4, start=5, end=16), media, [5, 7, 10, 12, 15])


def test_fps_above_the_source_rate_keeps_every_frame_once(pattern_video, media):
    assert_pattern(read_frames(str(pattern_video), fps=25), media, list(range(24)))


def test_start_end_bound_source_indices(pattern_video, media):
    assert_pattern(read_frames(str(pattern_video), start=3, end=9, stride=2), media, [3, 5, 7])
    assert_pattern(read_frames(str(pattern_video), start=20, end=1000), media, [20, 21, 22, 23])


def test_start_past_the_end_gives_no_frames(pattern_video):
    decoded = read_frames(str(pattern_video), start=30, max_size=32)
    assert decoded.frames.shape == (0, 24, 32, 3)
    assert decoded.frame_indices.shape == (0,)


def test_max_size_resizes_keeping_aspect(pattern_video, media):
    decoded = read_frames(str(pattern_video), max_size=33, stride=6)
    assert decoded.frames.shape == (4, 24, 32, 3)
    assert [media.frame_index_of(frame) for frame in decoded.frames] == [0, 6, 12, 18]
    assert decoded.frames[0, 3, 3].min() > 230  # white block still top-left
    assert read_frames(str(pattern_video), max_size=64, end=1).frames.shape == (1, 48, 64, 3)


@pytest.mark.parametrize(
    "size, max_size, expected",
    [((64, 48), None, (64, 48)), ((64, 48), 64, (64, 48)), ((64, 48), 33, (32, 24)),
     ((48, 64), 32, (24, 32)), ((101, 37), 50, (50, 18)), ((1000, 3), 100, (100, 2))],
)
def test_output_size(size, max_size, expected):
    info = VideoInfo("x.mp4", size[0], size[1], 10.0, 1, 0.1, 0, "h264")
    assert output_size(info, max_size) == expected


@pytest.mark.parametrize("ccw", [90, 180, 270])
def test_rotated_video_comes_out_upright(rotated_videos, media, ccw):
    decoded = read_frames(str(rotated_videos[ccw]), end=4)
    expected = np.rot90(media.pattern_frames()[:4], k=ccw // 90, axes=(1, 2))
    assert decoded.frames.shape == expected.shape
    assert np.abs(decoded.frames.astype(int) - expected.astype(int)).mean() < 1.5


def test_rotation_then_resize(rotated_videos):
    assert read_frames(str(rotated_videos[90]), max_size=32, end=1).frames.shape == (1, 32, 24, 3)


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch):
    """Route temporary files to an empty folder, to see that none are left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def test_memory_url_is_copied_locally_and_cleaned_up(pattern_video, media, private_tempdir):
    url = "memory://tubelets-test-video/pattern.mp4"
    with fsspec.open(url, "wb") as f:
        f.write(pattern_video.read_bytes())
    decoded = read_frames(url, stride=4)
    assert decoded.info.url == url
    assert_pattern(decoded, media, [0, 4, 8, 12, 16, 20])
    frames = iter_frames(url)
    next(frames)
    frames.close()
    assert list(private_tempdir.iterdir()) == []


def test_file_url(pattern_video, media):
    assert_pattern(read_frames(pattern_video.as_uri(), end=3), media, [0, 1, 2])


def test_fewer_frames_than_probed_is_truncated(pattern_video, monkeypatch):
    real_probe = video.probe_local

    def overstated(url, path):
        return dataclasses.replace(real_probe(url, path), frame_count=29)

    monkeypatch.setattr(video, "probe_local", overstated)
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(str(pattern_video))
    assert caught.value.reason == "truncated"
    assert "decoded 24 of 29 frames" in str(caught.value)


@pytest.fixture
def decoders(monkeypatch) -> list[subprocess.Popen]:
    """The ffmpeg processes that decode frames (not the probe's), as they start."""
    started = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        if "rawvideo" in process.args:
            started.append(process)
        return process

    monkeypatch.setattr(video.subprocess, "Popen", recording_popen)
    return started


def reader_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "tubelets-read-ahead"]


@pytest.fixture
def frame_reads(monkeypatch) -> list[str]:
    """The name of the thread of each frame read from ffmpeg's pipe; 3 frames ahead at most."""
    reads = []
    real_read_exact = video._read_exact

    def counting_read_exact(stream, buffer):
        reads.append(threading.current_thread().name)
        return real_read_exact(stream, buffer)

    monkeypatch.setattr(video, "_read_exact", counting_read_exact)
    monkeypatch.setattr(video, "FRAMES_AHEAD", 3)
    return reads


def wait_for(reads: list, count: int) -> None:
    """Until ``count`` frames were read, and a while longer to see that no more are."""
    deadline = time.monotonic() + 5
    while len(reads) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(reads) == count


def returns_in_time(call, seconds: float = 5) -> bool:
    """Whether ``call()`` returns within ``seconds``: run in a thread of its own, so that a hang fails a test."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


# With the frame given, 3 waiting in the queue, and one more read and waiting for room: the reader at its bound.
AT_THE_BOUND = 1 + 3 + 1


@pytest.mark.parametrize("read_ahead", [True, False])
@pytest.mark.parametrize("stop", ["close", "drop"])
def test_stopping_early_ends_ffmpeg_and_the_reader_thread(pattern_video, decoders, frame_reads, read_ahead, stop):
    held = [iter_frames(str(pattern_video), read_ahead=read_ahead)]
    next(held[0])
    assert len(reader_threads()) == (1 if read_ahead else 0)
    wait_for(frame_reads, AT_THE_BOUND if read_ahead else 1)  # stopped while the reader waits for room
    # "drop": a caller that just lets go of the generator.
    assert returns_in_time(held[0].close if stop == "close" else lambda: (held.clear(), gc.collect()))
    (decoder,) = decoders
    assert decoder.poll() is not None
    assert reader_threads() == []


def test_reading_ahead_gives_the_frames_of_reading_in_turn(testsrc_video, pattern_video):
    for url, options in ((testsrc_video, {}), (pattern_video, {"stride": 3, "max_size": 32, "start": 2})):
        ahead = list(iter_frames(str(url), **options))
        in_turn = list(iter_frames(str(url), read_ahead=False, **options))
        whole = read_frames(str(url), **options)
        assert [index for index, _ in ahead] == [index for index, _ in in_turn] == whole.frame_indices.tolist()
        assert np.array_equal(np.stack([frame for _, frame in ahead]), whole.frames)
        assert np.array_equal(np.stack([frame for _, frame in in_turn]), whole.frames)
        assert not np.shares_memory(ahead[0][1], ahead[1][1])
    assert reader_threads() == []


def test_reading_ahead_stops_a_few_frames_ahead(pattern_video, frame_reads):
    frames = iter_frames(str(pattern_video))
    next(frames)
    wait_for(frame_reads, AT_THE_BOUND)
    assert set(frame_reads) == {"tubelets-read-ahead"}
    assert len(list(frames)) == 23


@pytest.mark.parametrize(
    "frame_bytes, expected",
    [(64 * 48 * 3, 4), (1280 * 720 * 3, 4), (1920 * 1080 * 3, 2), (3840 * 2160 * 3, 1), (2**30, 1)],
)
def test_frames_ahead_are_capped_in_bytes(frame_bytes, expected):
    assert video._frames_ahead(frame_bytes) == expected


def test_an_error_of_the_reader_thread_is_raised_in_the_caller(pattern_video, decoders, monkeypatch):
    real_read_exact = video._read_exact
    reads = []

    def failing_read_exact(stream, buffer):
        reads.append(threading.current_thread().name)
        if len(reads) == 3:
            raise OSError("the pipe broke")
        return real_read_exact(stream, buffer)

    monkeypatch.setattr(video, "_read_exact", failing_read_exact)
    frames = iter_frames(str(pattern_video))
    assert [index for index, _ in (next(frames), next(frames))] == [0, 1]
    with pytest.raises(OSError, match="the pipe broke"):
        next(frames)
    assert set(reads) == {"tubelets-read-ahead"}
    (decoder,) = decoders
    assert decoder.poll() is not None
    assert reader_threads() == []


def failure_text(frames) -> tuple[str, str]:
    with pytest.raises(VideoDecodeError) as caught:
        for _ in frames:
            pass
    return caught.value.reason, str(caught.value)


def test_reading_ahead_fails_as_reading_in_turn(pattern_video, tmp_path, monkeypatch):
    url = str(pattern_video)
    real_probe = video.probe_local
    monkeypatch.setattr(video, "probe_local", lambda *a: dataclasses.replace(real_probe(*a), frame_count=29))
    truncated = failure_text(iter_frames(url))
    assert truncated == failure_text(iter_frames(url, read_ahead=False))
    assert truncated[0] == "truncated" and "decoded 24 of 29 frames" in truncated[1]

    failing = tmp_path / "ffmpeg"
    failing.write_text("#!/bin/sh\necho 'Unknown encoder' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.setattr(video, "ffmpeg_binary", lambda: str(failing))
    failed = failure_text(iter_frames(url))
    assert failed == failure_text(iter_frames(url, read_ahead=False))
    assert failed[0] == "ffmpeg_failed" and "decoded 0 of 29 frames; ffmpeg: Unknown encoder" in failed[1]
    assert reader_threads() == []


def test_bad_arguments_fail_before_iterating():
    for options in ({"stride": 0}, {"stride": 2, "fps": 5}, {"fps": 0}, {"max_size": 1}, {"start": 5, "end": 2}):
        with pytest.raises(ValueError):
            iter_frames("no_such_file.mp4", **options)


def test_bad_input_raises_on_first_frame(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    frames = iter_frames(str(tmp_path / "notes.mp4"))
    with pytest.raises(VideoDecodeError) as caught:
        next(frames)
    assert caught.value.reason == "not_a_video"
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(str(tmp_path / "missing.mp4"))
    assert caught.value.reason == "missing"
