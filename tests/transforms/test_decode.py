import shutil

import fsspec
import numpy as np
import pytest
from apache_beam import pvalue

from tubelets import tables
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.video import read_frames
from tubelets.records import VideoMeta
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS
from tubelets.transforms.decode import META, DecodeVideo
from tubelets.transforms.inputs import VideoInput


def decode_chunks(item: VideoInput, **settings) -> tuple[list, list, list]:
    """``DecodeVideo.process`` on one input, after ``setup()``: (chunks, metas, dead-letter rows)."""
    decoder = DecodeVideo(**{"stride": 1, "fps": None, "max_size": None, **settings})
    decoder.setup()
    chunks, metas, dead = [], [], []
    for output in decoder.process(item):
        if isinstance(output, pvalue.TaggedOutput):
            assert output.tag in (META, DEAD_LETTERS)
            (metas if output.tag == META else dead).append(output.value)
        else:
            chunks.append(output)
    return chunks, metas, dead


def run_decode(item: VideoInput, **settings) -> tuple[list, list, list]:
    """:func:`decode_chunks` with the default chunks, a frame each: (``((key, frame), frame)``, metas, dead)."""
    chunks, metas, dead = decode_chunks(item, **settings)
    assert all(chunk.shape[0] == 1 for _, chunk in chunks)
    return [(key, chunk[0]) for key, chunk in chunks], metas, dead


@pytest.fixture(scope="module")
def dataset(shapes_url) -> YouTubeVISDataset:
    return YouTubeVISDataset(shapes_url)


@pytest.fixture(scope="module")
def first_video(dataset) -> VideoInput:
    record = dataset.video(1)
    return VideoInput(key=record.name, url=dataset.video_url(1), source="video", video_id=1)


@pytest.fixture(scope="module")
def decoded(first_video):
    return run_decode(first_video)


def test_a_good_video_streams_its_frames_keyed_by_key_and_position(decoded, first_video, dataset):
    frames, _, dead = decoded
    length = dataset.video(1).length
    assert dead == []
    assert [key for key, _ in frames] == [(first_video.key, t) for t in range(length)]
    # In order and untouched: exactly what the video reader decodes from the file.
    expected = read_frames(first_video.url).frames
    assert all(np.array_equal(frame, expected[t]) for (_, t), frame in frames)
    assert frames[0][1].dtype == np.uint8 and frames[0][1].shape == (48, 64, 3)


def test_a_good_video_ends_with_its_meta(decoded, first_video, dataset):
    _, metas, _ = decoded
    length = dataset.video(1).length
    assert metas == [
        (first_video.key, VideoMeta(key=first_video.key, width=64, height=48, length=length, video_id=1,
                                    frame_indices=list(range(length)), url=first_video.url, source="video"))
    ]


def test_stride_keeps_every_nth_frame_and_records_their_source_indices(decoded, first_video):
    every_frame = [frame for _, frame in decoded[0]]
    frames, ((_, meta),), dead = run_decode(first_video, stride=3)
    source = list(range(0, len(every_frame), 3))
    assert dead == [] and (meta.length, meta.frame_indices) == (len(source), source)
    assert [key for key, _ in frames] == [(first_video.key, position) for position in range(len(source))]
    for (_, frame), index in zip(frames, source, strict=True):
        assert np.array_equal(frame, every_frame[index])


def test_the_frames_go_out_as_the_detector_takes_them_in_chunks_of_its_own_video(decoded, first_video):
    every_frame = [frame for _, frame in decoded[0]]
    chunks, ((_, meta),), dead = decode_chunks(first_video, detect_every=2, frames_per_forward=3)
    detected = list(range(0, len(every_frame), 2))  # the frames the detector runs on
    firsts = detected[::3]
    assert dead == [] and meta == decoded[1][0][1]  # the meta counts every decoded frame
    assert [key for key, _ in chunks] == [(first_video.key, first) for first in firsts]
    assert [len(chunk) for _, chunk in chunks] == [len(detected[i:i + 3]) for i in range(0, len(detected), 3)]
    for (_, first), chunk in chunks:
        assert all(np.array_equal(frame, every_frame[first + 2 * offset]) for offset, frame in enumerate(chunk))


def test_max_size_scales_the_frames_and_the_meta(first_video):
    frames, ((_, meta),), _ = run_decode(first_video, max_size=32)
    assert frames[0][1].shape == (24, 32, 3) and (meta.width, meta.height) == (32, 24)


@pytest.mark.parametrize("reason", ["not_a_video", "empty", "missing"])
def test_a_bad_file_is_one_dead_letter_with_its_reason(bad_videos, reason):
    url = bad_videos[reason]
    frames, metas, dead = run_decode(VideoInput(key=url, url=url))
    assert frames == [] and metas == []
    (row,) = dead
    assert (row["input"], row["stage"], row["error_type"]) == (url, "decode", reason)
    assert url in row["message"]
    table = tables.to_arrow([{**row, "run_id": "r"}], tables.DEAD_LETTERS)  # a valid row of the table
    assert table.num_rows == 1


def test_a_memory_url_decodes_like_the_local_file(decoded, first_video):
    with open(first_video.url, "rb") as handle:
        fsspec.filesystem("memory").pipe("/decode-test/clip.mp4", handle.read())
    url = "memory://decode-test/clip.mp4"
    frames, metas, dead = run_decode(VideoInput(key="clip", url=url))
    assert dead == [] and len(metas) == 1
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(frames, decoded[0], strict=True))


def test_the_jpeg_source_reads_the_dataset_frames(shapes_url, dataset):
    record = dataset.video(2)
    frames, metas, dead = run_decode(VideoInput(key=record.name, url=shapes_url, source="jpeg", video_id=2), stride=2)
    expected = list(dataset.iter_frames(2, source="jpeg", stride=2))
    assert dead == [] and len(frames) == len(expected)
    assert [key for key, _ in frames] == [(record.name, position) for position in range(len(expected))]
    assert all(np.array_equal(frame, jpeg) for (_, frame), (_, jpeg) in zip(frames, expected))
    assert metas == [(record.name, VideoMeta(key=record.name, width=64, height=48, length=len(expected), video_id=2,
                                             frame_indices=[index for index, _ in expected],
                                             url=shapes_url, source="jpeg"))]


def test_a_jpeg_video_missing_a_frame_fails_part_way_without_meta(shapes_url, dataset, tmp_path):
    copy = tmp_path / "shapes"
    shutil.copytree(shapes_url, copy)
    record = dataset.video(1)
    (copy / "JPEGImages" / record.file_names[3]).unlink()
    frames, metas, dead = run_decode(VideoInput(key=record.name, url=str(copy), source="jpeg", video_id=1))
    assert len(frames) == 3 and metas == []  # the orphan frames are dropped where meta and frames join
    (row,) = dead
    assert (row["error_type"], row["stage"]) == ("DatasetError", "decode") and "frame 3" in row["message"]


# ---- DAVIS sequences, and meta without frames (the VOS pipeline reads frames itself) ---------------------


@pytest.fixture(scope="module")
def davis_url(tmp_path_factory) -> str:
    """One DAVIS sequence, video_0000 of seed 1: 12 frames of 64x48."""
    from tubelets.synth.davis_layout import generate_davis

    root = tmp_path_factory.mktemp("decode-davis") / "davis"
    generate_davis(str(root), videos=1, seed=1, width=64, height=48)
    return str(root)


def test_the_davis_source_reads_the_sequence_jpegs(davis_url):
    from tubelets.io.davis import DavisDataset

    sequence = DavisDataset(davis_url)
    frames, metas, dead = run_decode(VideoInput(key="video_0000", url=davis_url, source="davis"))
    length = sequence.frame_count("video_0000")
    assert dead == [] and length == 12
    assert [key for key, _ in frames] == [("video_0000", t) for t in range(length)]
    assert all(np.array_equal(frame, sequence.read_frame("video_0000", t)) for (_, t), frame in frames)
    assert metas == [("video_0000", VideoMeta(key="video_0000", width=64, height=48, length=length,
                                              frame_indices=list(range(length)), url=davis_url, source="davis"))]


def test_without_frames_the_video_is_still_decoded_whole_for_its_meta(davis_url, decoded, first_video):
    davis = VideoInput(key="video_0000", url=davis_url, source="davis")
    for item, (_, full_metas, _) in ((first_video, decoded), (davis, run_decode(davis))):
        frames, metas, dead = run_decode(item, emit_frames=False)
        assert (frames, dead) == ([], []) and metas == full_metas  # every frame was decoded, and counted in length


def test_without_frames_a_corrupt_video_is_still_a_dead_letter(bad_videos):
    url = bad_videos["not_a_video"]
    frames, metas, dead = run_decode(VideoInput(key=url, url=url), emit_frames=False)
    assert (frames, metas) == ([], []) and [(d["stage"], d["error_type"]) for d in dead] == [("decode", "not_a_video")]


def test_a_davis_sequence_is_never_strided(davis_url):
    frames, metas, dead = run_decode(VideoInput(key="video_0000", url=davis_url, source="davis"), stride=2)
    assert (frames, metas) == ([], []) and "io.stride must be 1" in dead[0]["message"]


def test_a_missing_davis_sequence_is_a_dead_letter(davis_url):
    _, metas, dead = run_decode(VideoInput(key="nope", url=davis_url, source="davis"))
    assert metas == [] and (dead[0]["input"], dead[0]["error_type"]) == ("nope", "DatasetError")
    assert "'nope'" in dead[0]["message"]


def test_each_source_opens_its_own_kind_of_data_set(shapes_url, davis_url, first_video):
    # The one choice DecodeVideo and benchmarks/pipeline_bench.py share: a DAVIS folder is not a YouTube-VIS one.
    from tubelets.io.davis import DavisDataset
    from tubelets.transforms.decode import open_dataset

    assert open_dataset(first_video) is None
    assert isinstance(open_dataset(VideoInput(key="video_0000", url=davis_url, source="davis")), DavisDataset)
    jpeg = open_dataset(VideoInput(key=first_video.key, url=shapes_url, source="jpeg", video_id=1))
    assert isinstance(jpeg, YouTubeVISDataset) and jpeg.video(1).name == first_video.key
