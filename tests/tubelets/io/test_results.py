import json

import numpy as np
import pytest

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.results import (ordered_results, read_results, results_order, stream_results, validate_results,
                                 write_results)
from tubelets.records import Tubelet, TubeletFrame, VideoMeta
from tubelets.tubelet_rows import results_from_rows, tubelet_rows


def track_result(video_id=2, frames=4, size=(24, 32), **overrides):
    mask = np.zeros(size, np.uint8)
    mask[2:6, 3:9] = 1
    entry = {
        "video_id": video_id, "category_id": 1, "score": 0.75,
        "segmentations": [masks.encode(mask)] * (frames - 1) + [None],
    }
    return {**entry, **overrides}


def test_a_videos_rows_give_its_entries_in_results_order():
    mask = np.zeros((6, 8), np.uint8)
    mask[1:4, 2:5] = 1
    frame = TubeletFrame(0, masks.encode(mask), np.float32([2, 1, 5, 4]), 0.5)
    tubelets = [Tubelet(0, 1, 0.3, [frame]), Tubelet(1, 2, 0.8, [frame]), Tubelet(2, 1, 0.8, [frame])]
    rows = tubelet_rows(tubelets, VideoMeta("clip", 8, 6, 2, video_id=7), "r", {1: "a", 2: "b"})
    entries = ordered_results(rows)
    assert entries == sorted(results_from_rows(rows), key=results_order)
    assert [(e["score"], e["category_id"]) for e in entries] == [(pytest.approx(0.8), 1), (pytest.approx(0.8), 2),
                                                                 (pytest.approx(0.3), 1)]


def test_round_trip_normalises_types_and_rle(tmp_path, media):
    mask = media.vis_mask(0, 0)
    results = [
        {"video_id": np.int64(1), "category_id": np.int32(2), "score": np.float32(0.5),
         "segmentations": [media.uncompressed_rle(mask), None, masks.encode(mask)]},
        track_result(),
    ]
    url = str(tmp_path / "results.json")
    write_results(url, results)
    back = read_results(url)
    assert back[0] == {"video_id": 1, "category_id": 2, "score": 0.5,
                       "segmentations": [masks.encode(mask), None, masks.encode(mask)]}
    assert back[1] == track_result()
    assert isinstance(json.loads((tmp_path / "results.json").read_text()), list)


def test_empty_results_and_memory_url():
    write_results("memory://results-test/empty.json", [])
    assert read_results("memory://results-test/empty.json") == []


@pytest.mark.parametrize("count", [0, 1, 3])
def test_streamed_results_are_json_dumps_bytes_and_leave_no_temporary(tmp_path, count):
    entries = [track_result(video_id=v, score=0.5 + v / 10) for v in range(count)]
    assert stream_results(str(tmp_path / "results.json"), iter(entries)) == count
    assert (tmp_path / "results.json").read_text() == json.dumps(entries)
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_stream_that_fails_leaves_no_file(tmp_path):
    def entries():
        yield track_result()
        raise RuntimeError("the second video's file is unreadable")

    with pytest.raises(RuntimeError, match="unreadable"):
        stream_results(str(tmp_path / "results.json"), entries())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"video_id": 1, "score": 0.5, "segmentations": []}, r"result #1 lacks 'category_id'"),
        ({"video_id": 1, "category_id": 1, "score": float("nan"), "segmentations": []},
         "score must be a finite number"),
        ({"video_id": 1, "category_id": 1, "score": "high", "segmentations": []}, "score must be a finite number"),
        ({"video_id": "a", "category_id": 1, "score": 0.1, "segmentations": []}, "video_id must be an integer"),
        ({"video_id": 1, "category_id": 1, "score": 0.1, "segmentations": {}}, "segmentations must be a list"),
        ({"video_id": 1, "category_id": 1, "score": 0.1, "segmentations": [{"counts": "x"}]},
         r"segmentations\[0\] is not an RLE"),
        ([1, 2], r"result #1 is a list"),
    ],
)
def test_malformed_entries_name_file_and_index(tmp_path, bad, message):
    url = str(tmp_path / "results.json")
    with pytest.raises(DatasetError, match=r"results\.json: .*" + message):
        write_results(url, [track_result(), bad])
    (tmp_path / "results.json").write_text(json.dumps([track_result(), bad], allow_nan=True))
    with pytest.raises(DatasetError, match=r"results\.json: .*" + message):
        read_results(url)


@pytest.mark.parametrize(
    "content, message",
    [("[{", "not valid JSON"), ('{"video_id": 1}', "a results file must hold a JSON list, found dict")],
)
def test_unreadable_files(tmp_path, content, message):
    (tmp_path / "results.json").write_text(content)
    with pytest.raises(DatasetError, match=r"results\.json: " + message):
        read_results(str(tmp_path / "results.json"))
    with pytest.raises(DatasetError, match=r"nothing\.json: results file not found"):
        read_results(str(tmp_path / "nothing.json"))


def test_validate_against_dataset(vis_root):
    dataset = YouTubeVISDataset(str(vis_root))
    validate_results([track_result(), track_result(video_id=1, frames=3)], dataset)
    cases = [
        (track_result(video_id=7), "unknown video id 7"),
        (track_result(category_id=9), "unknown category id 9"),
        (track_result(frames=3), "3 segmentations, video 'vid_b' has 4 frames"),
        (track_result(size=(32, 24)), r"segmentations\[0\] has size \[32, 24\], video 'vid_b' is \[24, 32\]"),
    ]
    for bad, message in cases:
        with pytest.raises(DatasetError, match=r"result #1: " + message):
            validate_results([track_result(), bad], dataset)
