import io
import json
import re

import ffmpeg
import fsspec
import numpy as np
import pytest
from PIL import Image

from tubelets import masks as rle
from tubelets.io.ffmpeg_binary import ffmpeg_binary
from tubelets.io.video_writer import encode_mp4
from tubelets.synth import CATEGORIES, generate_dataset, generate_video, video_rng

WIDTH, HEIGHT = 96, 64
VIDEO_KEYS = {"id", "name", "width", "height", "length", "file_names"}
ANNOTATION_KEYS = {
    "id", "video_id", "category_id", "iscrowd", "width", "height", "length", "segmentations", "bboxes", "areas",
}  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes_vis")
    returned = generate_dataset(str(root), videos=2, seed=11, width=WIDTH, height=HEIGHT)
    return root, returned


def decode_mp4(path) -> tuple[np.ndarray, str]:
    """All frames as ``uint8 [T, H, W, 3]`` plus ffmpeg's log (which states the stream size)."""
    out, err = (
        ffmpeg.input(str(path))
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .run(cmd=ffmpeg_binary(), capture_stdout=True, capture_stderr=True)
    )
    log = err.decode("utf-8", "replace")
    width, height = (int(v) for v in re.search(r"Video: h264.*?, (\d+)x(\d+)", log).groups())
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3), log


def block_means(frames: np.ndarray) -> np.ndarray:
    t, h, w, c = frames.shape
    return frames.reshape(t, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))


def test_instances_json_has_the_youtube_vis_layout(written):
    root, returned = written
    dataset = json.loads((root / "instances.json").read_text())
    assert dataset == returned
    assert set(dataset) == {"info", "videos", "annotations", "categories"}
    assert dataset["categories"] == CATEGORIES
    assert [c["name"] for c in CATEGORIES] == ["disc", "box", "triangle", "star", "ring", "cross"]
    assert dataset["info"]["seed"] == 11 and dataset["info"]["hard"] is False and dataset["info"]["version"]
    assert [v["id"] for v in dataset["videos"]] == [1, 2]
    assert [v["name"] for v in dataset["videos"]] == ["video_0000", "video_0001"]
    for video in dataset["videos"]:
        assert set(video) == VIDEO_KEYS
        assert (video["width"], video["height"]) == (WIDTH, HEIGHT)
        assert video["file_names"] == [f"{video['name']}/{t:05d}.jpg" for t in range(video["length"])]
    assert [a["id"] for a in dataset["annotations"]] == list(range(1, len(dataset["annotations"]) + 1))


def test_annotations_match_the_rendered_masks(written):
    _, dataset = written
    lengths = {v["id"]: v["length"] for v in dataset["videos"]}
    for index in range(2):
        video = generate_video(video_rng(11, index), WIDTH, HEIGHT)
        annotations = [a for a in dataset["annotations"] if a["video_id"] == index + 1]
        assert len(annotations) == len(video.instances) and lengths[index + 1] == video.length
        for annotation, instance in zip(annotations, video.instances):
            assert set(annotation) == ANNOTATION_KEYS
            assert annotation["iscrowd"] == 0 and annotation["category_id"] == instance.category_id
            assert (annotation["width"], annotation["height"], annotation["length"]) == (WIDTH, HEIGHT, video.length)
            for key in ("segmentations", "bboxes", "areas"):
                assert len(annotation[key]) == video.length
            for segmentation, box, area, mask in zip(
                annotation["segmentations"], annotation["bboxes"], annotation["areas"], instance.masks
            ):
                if mask is None:
                    assert segmentation is None and box is None and area is None
                    continue
                assert set(segmentation) == {"size", "counts"} and isinstance(segmentation["counts"], str)
                np.testing.assert_array_equal(rle.decode(segmentation).astype(bool), mask)
                assert area == int(mask.sum()) and isinstance(area, int)
                rows, cols = np.nonzero(mask)
                assert box == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]


def test_jpegs_and_mp4_hold_the_frames(written):
    root, dataset = written
    for record in dataset["videos"]:
        video = generate_video(video_rng(11, record["id"] - 1), WIDTH, HEIGHT)
        jpegs = sorted((root / "JPEGImages" / record["name"]).iterdir())
        assert [f"{record['name']}/{p.name}" for p in jpegs] == record["file_names"]
        first = np.asarray(Image.open(jpegs[0]).convert("RGB"))
        assert np.abs(first.astype(int) - video.frames[0]).mean() < 4
        frames, log = decode_mp4(root / "videos" / f"{record['name']}.mp4")
        assert frames.shape == (record["length"], HEIGHT, WIDTH, 3)
        assert "yuv420p" in log and re.search(r"\b10 fps\b", log)
        # yuv420p halves the chroma resolution and the grain does not survive H.264, so
        # compare 4x4 block means: the same pictures, in the same order.
        assert np.abs(block_means(frames) - block_means(video.frames)).mean() < 2.2  # ~1.6; 2.9 off by a frame


def test_same_seed_gives_identical_output_and_video_k_ignores_the_count(tmp_path):
    one = generate_dataset(str(tmp_path / "a"), videos=1, seed=3, width=WIDTH, height=HEIGHT, write_videos=False)
    two = generate_dataset(str(tmp_path / "b"), videos=2, seed=3, width=WIDTH, height=HEIGHT, write_videos=False)
    assert one["videos"][0] == two["videos"][0]
    first_video = [a for a in two["annotations"] if a["video_id"] == 1]
    assert one["annotations"] == first_video
    again = generate_dataset(str(tmp_path / "c"), videos=1, seed=3, width=WIDTH, height=HEIGHT, write_videos=False)
    assert again == one
    assert (tmp_path / "a" / "instances.json").read_bytes() == (tmp_path / "c" / "instances.json").read_bytes()
    for name in ("00000.jpg", "00005.jpg"):
        path = "JPEGImages/video_0000/" + name
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "c" / path).read_bytes()
    other = generate_dataset(str(tmp_path / "d"), videos=1, seed=4, width=WIDTH, height=HEIGHT, write_videos=False)
    assert other["annotations"] != one["annotations"]


def test_writes_to_an_fsspec_memory_url():
    url = "memory://synth-test/shapes"
    fs = fsspec.filesystem("memory")
    try:
        dataset = generate_dataset(url, videos=1, seed=2, width=64, height=48)
        assert json.loads(fs.cat_file("/synth-test/shapes/instances.json")) == dataset
        length = dataset["videos"][0]["length"]
        assert len(fs.ls("/synth-test/shapes/JPEGImages/video_0000")) == length
        Image.open(io.BytesIO(fs.cat_file("/synth-test/shapes/JPEGImages/video_0000/00000.jpg"))).verify()
        assert fs.cat_file("/synth-test/shapes/videos/video_0000.mp4")[4:8] == b"ftyp"
    finally:
        fs.rm("/synth-test", recursive=True)


def test_frames_only_or_annotations_only(tmp_path):
    dataset = generate_dataset(str(tmp_path), videos=1, width=64, height=48, write_videos=False, write_jpegs=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instances.json"]
    assert len(dataset["videos"]) == 1 and dataset["annotations"]


def test_zero_videos_is_an_empty_data_set(tmp_path):
    dataset = generate_dataset(str(tmp_path / "empty"), videos=0)
    assert dataset["videos"] == [] and dataset["annotations"] == [] and len(dataset["categories"]) == 6
    assert (tmp_path / "empty" / "instances.json").exists()


@pytest.mark.parametrize("width, height", [(97, 64), (96, 63)])
def test_odd_frame_size_fails_before_writing(tmp_path, width, height):
    with pytest.raises(ValueError, match="odd side.*even"):
        generate_dataset(str(tmp_path / "out"), videos=1, width=width, height=height)
    assert not (tmp_path / "out").exists()
    generate_dataset(str(tmp_path / "frames"), videos=1, width=width, height=height, write_videos=False)


@pytest.mark.parametrize(
    "arguments, message",
    [({"videos": -1}, "videos"), ({"seed": -5}, "seed"), ({"videos": 1.5}, "videos"), ({"width": 20}, "width")],
)
def test_bad_arguments_fail_clearly(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        generate_dataset(str(tmp_path / "out"), **arguments)


def test_encoder_rejects_odd_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        encode_mp4(np.zeros((2, 33, 64, 3), np.uint8), str(tmp_path / "odd.mp4"), 10)
