import numpy as np
import pytest

from tubelets.io.frames import VideoFrames
from tubelets.io.video import read_frames
from tubelets.records import VideoMeta
from tubelets.synth import generate_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames") / "data"
    gt = generate_dataset(str(root), videos=1, seed=3, width=96, height=64)
    return str(root), gt["videos"][0]


def _meta(decoded, url, **extra):
    height, width = decoded.frames.shape[1:3]
    return VideoMeta("v", width, height, len(decoded.frames), video_id=1,
                     frame_indices=[int(i) for i in decoded.frame_indices], url=url, **extra)


def test_random_access_matches_one_pass_decode_with_stride(dataset):
    root, video = dataset
    url = f"{root}/videos/{video['name']}.mp4"
    decoded = read_frames(url, stride=2)
    frames = VideoFrames(_meta(decoded, url), window=3, cached_windows=2)
    order = list(reversed(range(len(frames)))) + [0, len(frames) // 2]
    for position in order:
        np.testing.assert_array_equal(frames[position], decoded.frames[position])
    assert len(frames._cache) <= 2  # memory stays bounded by the window count


def test_max_size_is_applied_like_the_decoder(dataset):
    root, video = dataset
    url = f"{root}/videos/{video['name']}.mp4"
    decoded = read_frames(url, max_size=48)
    frames = VideoFrames(_meta(decoded, url), max_size=48)
    assert frames[1].shape == decoded.frames[1].shape == (32, 48, 3)


def test_jpeg_source_reads_the_data_set_frames(dataset):
    root, video = dataset
    meta = VideoMeta("v", 96, 64, video["length"], video_id=video["id"], url=root, source="jpeg")
    frames = VideoFrames(meta, window=4)
    assert frames[video["length"] - 1].shape == (64, 96, 3)


def test_out_of_range_and_missing_url():
    meta = VideoMeta("v", 8, 8, 2, url="/nowhere.mp4")
    with pytest.raises(IndexError):
        VideoFrames(meta)[2]
    with pytest.raises(ValueError, match="no source url"):
        VideoFrames(VideoMeta("v", 8, 8, 2))


def test_davis_source_reads_the_sequence_jpegs(tmp_path):
    from tubelets.io.davis import DavisDataset
    from tubelets.synth.davis_layout import generate_davis

    root = str(tmp_path / "davis")
    generate_davis(root, videos=1, seed=1, width=64, height=48)
    sequence = DavisDataset(root)
    length = sequence.frame_count("video_0000")
    frames = VideoFrames(VideoMeta("video_0000", 64, 48, length, url=root, source="davis"), window=4, cached_windows=1)
    for t in [length - 1, 0, 5, 4]:  # across windows, backward and forward
        np.testing.assert_array_equal(frames[t], sequence.read_frame("video_0000", t))
    assert len(frames) == length and len(frames._cache) == 1
