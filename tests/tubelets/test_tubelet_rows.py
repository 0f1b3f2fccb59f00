import numpy as np
import pytest

from tubelets import masks, tables
from tubelets.errors import DatasetError
from tubelets.records import Tubelet, TubeletFrame, VideoMeta
from tubelets.tubelet_rows import results_from_rows, tubelet_from_row, tubelet_rows, tubelets_to_results

HEIGHT, WIDTH = 48, 64
META = VideoMeta(key="gs://bucket/clip.mp4", width=WIDTH, height=HEIGHT, length=6, video_id=11,
                 frame_indices=[0, 3, 6, 9, 12, 15])  # every 3rd source frame


def _frame(frame, x, score, size=10):
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[5 : 5 + size, x : x + size] = 1
    return TubeletFrame(frame, masks.encode(mask), np.array([x, 5, x + size, 5 + size], np.float32), score)


def _tubelets():
    first = Tubelet(0, 1, 0.7, [_frame(0, 10, 0.8), _frame(2, 20, 0.6)])
    second = Tubelet(1, 3, 0.5, [_frame(5, 40, 0.5)])
    return [first, second]


def test_results_entries_have_one_segmentation_per_frame():
    results = tubelets_to_results(_tubelets(), META)
    assert [(r["video_id"], r["category_id"], r["score"]) for r in results] == [(11, 1, 0.7), (11, 3, 0.5)]
    segmentations = results[0]["segmentations"]
    assert len(segmentations) == META.length
    assert [s is None for s in segmentations] == [False, True, False, True, True, True]
    assert masks.decode(segmentations[2]).sum() == 100 and segmentations[2]["size"] == [HEIGHT, WIDTH]
    assert tubelets_to_results([], META) == []


def test_each_other_class_is_a_results_entry_of_its_own_with_the_same_masks():
    first, second = _tubelets()
    first.other_classes = [(3, 0.2), (2, 0.1)]
    results = tubelets_to_results([first, second], META)
    assert [(r["category_id"], r["score"]) for r in results] == [(1, 0.7), (3, 0.2), (2, 0.1), (3, 0.5)]
    assert results[1]["segmentations"] == results[2]["segmentations"] == results[0]["segmentations"]


def test_results_need_a_video_id_and_frames_inside_the_video():
    with pytest.raises(DatasetError, match="clip.mp4"):
        tubelets_to_results(_tubelets(), VideoMeta("gs://bucket/clip.mp4", WIDTH, HEIGHT, 6))
    with pytest.raises(ValueError, match="frame 5"):
        tubelets_to_results(_tubelets(), VideoMeta("v", WIDTH, HEIGHT, 5, video_id=1))
    with pytest.raises(ValueError, match=r"\[48, 64\] mask"):
        tubelets_to_results(_tubelets(), VideoMeta("v", 32, 24, 6, video_id=1))


def test_rows_fit_the_tubelets_table():
    rows = tubelet_rows(_tubelets(), META, "run-1", {1: "disc", 3: "star"})
    table = tables.to_arrow(rows, tables.TUBELETS)
    assert table.schema.equals(tables.TUBELETS) and table.num_rows == 2
    first = table.to_pylist()[0]
    assert (first["video"], first["video_id"], first["category_name"]) == ("gs://bucket/clip.mp4", 11, "disc")
    assert (first["first_frame"], first["last_frame"], first["frame_count"], first["video_length"]) == (0, 2, 2, 6)
    frame = first["frames"][1]
    assert (frame["frame"], frame["source_frame"], frame["height"], frame["width"]) == (2, 6, HEIGHT, WIDTH)
    assert frame["box"] == [20, 5, 30, 15]
    assert frame["score"] == pytest.approx(0.6)
    decoded = masks.decode({"size": [frame["height"], frame["width"]], "counts": frame["rle"]})
    np.testing.assert_array_equal(decoded, masks.decode(_tubelets()[0].frames[1].mask))


def test_rows_list_the_other_classes_by_name():
    first, second = _tubelets()
    first.other_classes = [(3, 0.25)]
    rows = tables.to_arrow(tubelet_rows([first, second], META, "run-1", {1: "disc", 3: "star"}), tables.TUBELETS)
    other = rows.column("other_classes").to_pylist()
    assert other == [[{"category_id": 3, "category_name": "star", "score": 0.25}], []]
    assert tubelet_from_row(rows.to_pylist()[0]).other_classes == [(3, 0.25)]
    first.other_classes = [(4, 0.1)]
    with pytest.raises(ValueError, match=r"category id 4 has no name"):
        tubelet_rows([first], META, "run-1", {1: "disc", 3: "star"})


def test_rows_without_video_id_and_with_an_unnamed_category():
    rows = tubelet_rows(_tubelets()[:1], VideoMeta("local.mp4", WIDTH, HEIGHT, 6), "run-1", {1: "disc"})
    assert tables.to_arrow(rows, tables.TUBELETS).column("video_id").null_count == 1
    assert [frame["source_frame"] for frame in rows[0]["frames"]] == [0, 2]  # no frame_indices: identity
    with pytest.raises(ValueError, match=r"category id 3 has no name; named ids are \[1\]"):
        tubelet_rows(_tubelets(), META, "run-1", {1: "disc"})
    with pytest.raises(ValueError, match="no frames"):
        tubelet_rows([Tubelet(0, 1, 0.5, [])], META, "run-1", {1: "disc"})
    with pytest.raises(ValueError, match="2 frame_indices for 6 decoded frames"):
        tubelet_rows(_tubelets(), VideoMeta("v", WIDTH, HEIGHT, 6, frame_indices=[0, 1]), "run-1", {1: "disc"})


def test_a_table_row_reads_back_as_the_tubelet_it_was_written_from():
    written = _tubelets()
    rows = tables.to_arrow(tubelet_rows(written, META, "run-1", {1: "disc", 3: "star"}), tables.TUBELETS).to_pylist()
    for tubelet, row in zip(written, rows):
        back = tubelet_from_row(row)
        assert (back.tubelet_id, back.category_id, back.score) == pytest.approx(
            (tubelet.tubelet_id, tubelet.category_id, tubelet.score))
        assert [f.frame for f in back.frames] == [f.frame for f in tubelet.frames]
        for got, expected in zip(back.frames, tubelet.frames):
            np.testing.assert_array_equal(masks.decode(got.mask), masks.decode(expected.mask))
            np.testing.assert_allclose(got.box, expected.box)


def test_results_from_rows_score_what_the_table_stores():
    first, second = _tubelets()
    first.other_classes = [(3, 0.1)]
    rows = tubelet_rows([first, second], META, "run-1", {1: "disc", 3: "star"})
    results = results_from_rows(rows)
    # Made and read back from the table alike: float32 scores, so a resumed run scores what a whole one does.
    assert results == results_from_rows(tables.to_arrow(rows, tables.TUBELETS).to_pylist())
    assert [(r["category_id"], r["score"]) for r in results] == [
        (1, float(np.float32(0.7))), (3, float(np.float32(0.1))), (3, float(np.float32(0.5)))]
    expected = tubelets_to_results([first, second], META)
    assert [r["segmentations"] for r in results] == [r["segmentations"] for r in expected]
    assert results_from_rows([]) == []
