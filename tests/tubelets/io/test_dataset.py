import json
import pickle
import shutil

import fsspec
import numpy as np
import pytest

from tubelets import masks
from tubelets.errors import DatasetError, VideoDecodeError
from tubelets.io.dataset import Track, VideoRecord, YouTubeVISDataset, list_videos, video_records


@pytest.fixture
def vis_copy(vis_root, tmp_path):
    """A private copy of the shared data set, free to break."""
    return shutil.copytree(vis_root, tmp_path / "vis")


def edit_json(root, change):
    data = json.loads((root / "instances.json").read_text())
    change(data)
    (root / "instances.json").write_text(json.dumps(data))


def test_videos_and_categories(vis_root):
    dataset = YouTubeVISDataset(str(vis_root))
    file_names = ("vid_a/00000.jpg", "vid_a/00001.jpg", "vid_a/00002.jpg")
    assert dataset.videos[0] == VideoRecord(1, "vid_a", 32, 24, 3, file_names)
    assert [v.name for v in dataset.videos] == ["vid_a", "vid_b"]
    assert dataset.categories == [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}]
    assert dataset.video("vid_b") is dataset.video(2)
    assert dataset.has_annotations
    with pytest.raises(DatasetError, match="no video 'vid_z'"):
        dataset.video("vid_z")


def test_tracks_normalise_uncompressed_rle_and_keep_absent_frames(vis_root, media):
    tracks = YouTubeVISDataset(str(vis_root)).tracks("vid_a")
    assert len(tracks) == 1 and isinstance(tracks[0], Track)
    track = tracks[0]
    assert (track.id, track.video_id, track.category_id, track.iscrowd) == (10, 1, 1, 0)
    assert track.segmentations[2] is None and track.bboxes[2] is None and track.areas[2] is None
    assert track.segmentations[1] == masks.encode(media.vis_mask(1, 0))
    assert isinstance(track.segmentations[0]["counts"], str)
    assert track.bboxes[1] == [4.0, 4.0, 8.0, 6.0]
    assert track.areas[0] == 48.0


def test_masks_decode_to_n_t_h_w(vis_root, media):
    dataset = YouTubeVISDataset(str(vis_root))
    stacked, category_ids = dataset.masks(2)
    assert stacked.shape == (2, 4, 24, 32) and stacked.dtype == bool
    assert category_ids.tolist() == [2, 1]
    for t in range(4):
        np.testing.assert_array_equal(stacked[0, t], media.vis_mask(t, 8).astype(bool))
    first, _ = dataset.masks(1)
    assert first.shape == (1, 3, 24, 32) and not first[0, 2].any()


@pytest.mark.parametrize("source", ["jpeg", "video"])
def test_iter_frames_from_jpeg_and_video(vis_root, media, source):
    frames = list(YouTubeVISDataset(str(vis_root)).iter_frames("vid_b", source=source, stride=2))
    assert [t for t, _ in frames] == [0, 2]
    for t, frame in frames:
        assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
        np.testing.assert_allclose(frame.reshape(-1, 3).mean(0), media.vis_color(1, t), atol=4)


def test_test_split_without_annotations(tmp_path, media):
    root = media.make_vis_dataset(tmp_path / "test_split", with_annotations=False)
    dataset = YouTubeVISDataset(str(root))
    assert not dataset.has_annotations
    assert dataset.tracks("vid_a") == []
    stacked, category_ids = dataset.masks("vid_a")
    assert stacked.shape == (0, 3, 24, 32) and category_ids.shape == (0,)


def test_reads_from_memory_url(vis_root):
    fs = fsspec.filesystem("memory")
    for path in vis_root.rglob("*"):
        if path.is_file():
            fs.pipe(f"/vis-dataset-test/{path.relative_to(vis_root)}", path.read_bytes())
    dataset = YouTubeVISDataset("memory://vis-dataset-test")
    assert dataset.masks("vid_b")[0].shape == (2, 4, 24, 32)
    assert len(list(dataset.iter_frames("vid_a"))) == 3
    assert len(list(dataset.iter_frames("vid_a", source="video"))) == 3


def test_pickles_small_and_loads_lazily(vis_root):
    dataset = YouTubeVISDataset(str(vis_root))
    dataset.tracks(1)
    copy = pickle.loads(pickle.dumps(dataset))
    assert len(pickle.dumps(dataset)) < 400
    assert copy.tracks(1) == dataset.tracks(1)
    YouTubeVISDataset(str(vis_root / "nowhere"))  # construction reads nothing


def test_missing_frame_file(vis_copy):
    (vis_copy / "JPEGImages" / "vid_a" / "00001.jpg").unlink()
    frames = YouTubeVISDataset(str(vis_copy)).iter_frames("vid_a")
    assert next(frames)[0] == 0
    with pytest.raises(DatasetError, match=r"vid_a/00001\.jpg.*missing"):
        next(frames)


def test_missing_video_file(vis_copy):
    (vis_copy / "videos" / "vid_a.mp4").unlink()
    with pytest.raises(VideoDecodeError, match="vid_a.mp4"):
        next(YouTubeVISDataset(str(vis_copy)).iter_frames("vid_a", source="video"))


def test_frame_of_wrong_size(vis_copy):
    edit_json(vis_copy, lambda data: data["videos"][0].update(width=40))
    with pytest.raises(DatasetError, match="32x24"):
        next(YouTubeVISDataset(str(vis_copy)).iter_frames("vid_a"))


def test_video_records_of_parsed_annotations_are_the_data_sets_videos(vis_root):
    dataset = YouTubeVISDataset(str(vis_root))
    data = json.loads((vis_root / "instances.json").read_text())
    assert video_records(dataset.annotations_url, data) == dataset.videos
    with pytest.raises(DatasetError, match="x.json: expected a JSON object with a 'videos' list"):
        video_records("x.json", [])


def test_bad_json(vis_copy):
    (vis_copy / "instances.json").write_text('{"videos": [')
    with pytest.raises(DatasetError, match=r"instances\.json: not valid JSON"):
        YouTubeVISDataset(str(vis_copy)).videos


def test_missing_annotations_file(tmp_path):
    with pytest.raises(DatasetError, match=r"instances\.json: annotations file not found"):
        YouTubeVISDataset(str(tmp_path)).videos


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["annotations"][1]["segmentations"].pop(),
         r"annotations\[1\] has 3 segmentations, video 'vid_b' has 4"),
        (lambda d: d["annotations"][0].update(video_id=9), r"annotations\[0\] refers to unknown video id 9"),
        (lambda d: d["annotations"][0].update(category_id=7), r"annotations\[0\] refers to unknown category id 7"),
        (lambda d: d["annotations"][0].pop("segmentations"), r"annotations\[0\] needs"),
        (lambda d: d["videos"][0].pop("height"), r"videos\[0\] is malformed"),
        (lambda d: d["videos"][1].update(length=5), r"videos\[1\] has length 5 but 4 file_names"),
        (lambda d: d.pop("videos"), "expected a JSON object with a 'videos' list"),
    ],
)
def test_malformed_annotations(vis_copy, change, message):
    edit_json(vis_copy, change)
    with pytest.raises(DatasetError, match=r"instances\.json: " + message):
        YouTubeVISDataset(str(vis_copy)).videos


@pytest.mark.parametrize(
    "bad_segmentation, message",
    [
        (masks.encode(np.zeros((5, 5), np.uint8)), r"annotation id 11 of video 'vid_b': mask size \[5, 5\]"),
        ([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], r"annotation id 11 of video 'vid_b': a segmentation is not an RLE"),
    ],
)
def test_segmentation_of_wrong_size_or_form(vis_copy, bad_segmentation, message):
    edit_json(vis_copy, lambda data: data["annotations"][1]["segmentations"].__setitem__(0, bad_segmentation))
    with pytest.raises(DatasetError, match=r"instances\.json: " + message):
        YouTubeVISDataset(str(vis_copy)).tracks("vid_b")


def test_list_videos_from_glob_folder_and_dataset(vis_root, tmp_path):
    (tmp_path / "clips" / "deeper").mkdir(parents=True)
    for name in ("b.mp4", "a.MOV", "notes.txt", "deeper/c.mp4"):
        (tmp_path / "clips" / name).write_bytes(b"x")
    assert list_videos(str(tmp_path / "clips" / "*.mp4")) == [str(tmp_path / "clips" / "b.mp4")]
    assert list_videos(str(tmp_path / "clips" / "**" / "*.mp4"))[-1] == str(tmp_path / "clips" / "deeper" / "c.mp4")
    assert list_videos(str(tmp_path / "clips")) == [str(tmp_path / "clips" / n) for n in ("a.MOV", "b.mp4")]
    assert list_videos(str(vis_root)) == [str(vis_root / "videos" / f"{n}.mp4") for n in ("vid_a", "vid_b")]
    assert list_videos(str(tmp_path / "clips" / "*.mkv")) == []
    with pytest.raises(DatasetError, match="no such file or folder"):
        list_videos(str(tmp_path / "nowhere"))


def test_list_videos_keeps_the_protocol():
    fs = fsspec.filesystem("memory")
    fs.pipe("/list-videos-test/videos/x.mp4", b"x")
    fs.pipe("/list-videos-test/videos/y.mp4", b"y")
    expected = ["memory:///list-videos-test/videos/x.mp4", "memory:///list-videos-test/videos/y.mp4"]
    assert list_videos("memory://list-videos-test/videos/*.mp4") == expected
    assert list_videos("memory://list-videos-test") == expected
    with fsspec.open(expected[0], "rb") as f:
        assert f.read() == b"x"
