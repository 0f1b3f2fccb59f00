import numpy as np
import pytest

from tubelets import masks as rle
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.davis import DavisDataset
from tubelets.io.video import read_frames
from tubelets.synth import generate_dataset, generate_video, video_rng
from tubelets.synth.davis_layout import generate_davis

WIDTH, HEIGHT, SEED = 64, 48, 5


def block_means(frames: np.ndarray) -> np.ndarray:
    """Means of 4x4 pixel blocks, ``float [T, H/4, W/4, 3]``: compares frames past coding noise."""
    t, h, w, c = frames.shape
    return frames.reshape(t, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes_davis")
    return root, generate_davis(str(root), videos=2, seed=SEED, width=WIDTH, height=HEIGHT)


@pytest.fixture(scope="module")
def youtube_vis(tmp_path_factory):
    """The YouTube-VIS export of the same seed (annotations only)."""
    root = tmp_path_factory.mktemp("shapes_vis")
    generate_dataset(str(root), videos=2, seed=SEED, width=WIDTH, height=HEIGHT, write_videos=False, write_jpegs=False)
    return YouTubeVISDataset(str(root))


def test_layout_lists_every_sequence(written):
    root, names = written
    assert names == ["video_0000", "video_0001"]
    assert (root / "ImageSets/2017/val.txt").read_text() == "video_0000\nvideo_0001\n"
    assert DavisDataset(str(root), split="val").sequences() == names == DavisDataset(str(root)).sequences()


def test_frames_are_the_generated_videos(written):
    root, names = written
    dataset = DavisDataset(str(root))
    for index, name in enumerate(names):
        video = generate_video(video_rng(SEED, index), WIDTH, HEIGHT)
        assert dataset.frame_count(name) == video.length and dataset.frame_size(name) == (HEIGHT, WIDTH)
        assert dataset.annotated_frames(name) == list(range(video.length))
        frames = np.stack([frame for _, frame in dataset.iter_frames(name)])
        assert np.abs(frames.astype(int) - video.frames).mean() < 4  # ~3.2: JPEG of sensor noise
        assert np.abs(block_means(frames) - block_means(video.frames)).mean() < 1.0  # ~0.35


def test_annotations_equal_the_youtube_vis_masks(written, youtube_vis):
    """Object k + 1 of a sequence is the video's k-th YouTube-VIS annotation, pixel for pixel."""
    root, names = written
    dataset = DavisDataset(str(root))
    for name in names:
        tracks = youtube_vis.tracks(name)
        ids = dataset.annotations(name)
        assert dataset.object_ids(name) == list(range(1, len(tracks) + 1))
        expected = np.zeros_like(ids)
        for k, track in enumerate(tracks):
            for t, segmentation in enumerate(track.segmentations):
                if segmentation is not None:
                    expected[t][rle.decode(segmentation).astype(bool)] = k + 1
        assert np.array_equal(ids, expected)
        assert (ids == 0).any() and set(np.unique(ids)) <= set(range(len(tracks) + 1))


def test_mp4_copies_hold_the_same_frames(written):
    root, names = written
    video = generate_video(video_rng(SEED, 1), WIDTH, HEIGHT)
    decoded = read_frames(str(root / "videos" / f"{names[1]}.mp4"))
    assert decoded.frames.shape == (video.length, HEIGHT, WIDTH, 3)
    assert np.abs(block_means(decoded.frames) - block_means(video.frames)).mean() < 2.2  # ~1.5


def test_hard_videos_and_memory_urls():
    names = generate_davis("memory://shapes-davis-hard", videos=1, seed=2, width=64, height=48, hard=True)
    dataset = DavisDataset("memory://shapes-davis-hard", split="val")
    video = generate_video(video_rng(2, 0), 64, 48, hard=True)
    assert dataset.sequences() == names
    assert dataset.object_ids(names[0]) == list(range(1, len(video.instances) + 1))
    assert dataset.frame_count(names[0]) == video.length


def test_zero_videos_write_an_empty_split(tmp_path):
    assert generate_davis(str(tmp_path), videos=0) == []
    assert (tmp_path / "ImageSets/2017/val.txt").read_text() == ""
    assert DavisDataset(str(tmp_path), split="val").sequences() == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"videos": -1}, "videos must be a non-negative integer"),
        ({"seed": -3}, "seed must be a non-negative integer"),
        ({"width": 16}, "at least 32 pixels"),
        ({"height": 49}, "odd side"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_davis(str(tmp_path / "out"), **{"width": 64, "height": 48, **kwargs})
    assert not (tmp_path / "out").exists()
