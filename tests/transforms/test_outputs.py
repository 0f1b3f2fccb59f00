import io
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam import Create

import tubelets
from tubelets import masks, tables
from tubelets.tubelet_rows import tubelet_rows
from tubelets.records import Tubelet, TubeletFrame, VideoMeta
from tubelets.io.results import results_order
from tubelets.tables import write_table_file
from tubelets.transforms.outputs import WriteTable

PROVENANCE = {"config_hash": "c0ffee", "checkpoint_id": "ckpt-1", "tracker": "iou", "input": "/data/clips"}


def parquet_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as it reads back from Parquet (which stores second timestamps in milliseconds)."""
    buffer = io.BytesIO()
    pq.write_table(schema.empty_table(), buffer)
    return pq.read_schema(io.BytesIO(buffer.getvalue()))


def read_back(output: str, run_id: str, table: str) -> pa.Table:
    """The table's files, read straight from disk (a write left in a temp folder is not there)."""
    folder = os.path.join(output, run_id, table)
    files = sorted(os.listdir(folder))
    assert files and all(f.startswith("part-") and f.endswith(".parquet") for f in files), files
    parts = [pq.read_table(os.path.join(folder, f)) for f in files]
    for part in parts:
        assert part.schema.equals(parquet_schema(tables.TABLES[table]), check_metadata=False)
    return pa.concat_tables(parts)


def dead_letter_rows(n: int) -> list[dict]:
    created = tables.utc_now()
    return [{"input": f"clip{i}.mp4", "stage": "decode", "error_type": "empty", "message": f"m{i}",
             "created_at": created} for i in range(n)]


def test_write_table_writes_every_row_with_the_run_id_and_the_schema(tmp_path, pipeline):
    rows = dead_letter_rows(3)
    with pipeline as p:
        _ = p | Create(rows) | WriteTable(str(tmp_path), "run-1", "dead_letters", PROVENANCE)
    table = read_back(str(tmp_path), "run-1", "dead_letters")
    assert sorted(table.to_pylist(), key=lambda r: r["input"]) == [{**row, "run_id": "run-1"} for row in rows]
    assert os.listdir(tmp_path) == ["run-1"] and os.listdir(tmp_path / "run-1") == ["dead_letters"]  # no temp left


def test_write_table_puts_the_provenance_in_the_schema_metadata(tmp_path, pipeline):
    with pipeline as p:
        _ = p | Create(dead_letter_rows(1)) | WriteTable(str(tmp_path), "run-2", "dead_letters", PROVENANCE)
    folder = tmp_path / "run-2" / "dead_letters"
    (name,) = os.listdir(folder)
    assert tables.provenance(pq.read_schema(folder / name)) == {
        "version": tubelets.__version__, "schema_version": tables.SCHEMA_VERSION, "run_id": "run-2", **PROVENANCE,
    }


def test_an_empty_collection_still_writes_the_table_with_its_schema(tmp_path, pipeline):
    with pipeline as p:
        _ = p | Create([]) | WriteTable(str(tmp_path), "run-3", "metrics", PROVENANCE)
    table = read_back(str(tmp_path), "run-3", "metrics")
    assert table.num_rows == 0
    assert tables.read_table(str(tmp_path), "metrics", "run-3").num_rows == 0


def test_tubelet_rows_with_nested_frames_round_trip(tmp_path, pipeline):
    mask = np.zeros((48, 64), np.uint8)
    mask[5:15, 10:30] = 1
    frames = [TubeletFrame(t, masks.encode(mask), np.float32([10, 5, 30, 15]), 0.5 + t / 10) for t in (1, 2)]
    meta = VideoMeta("clip", 64, 48, 4, video_id=3, frame_indices=[0, 2, 4, 6])
    rows = tubelet_rows([Tubelet(0, 2, 0.55, frames)], meta, "run-4", {2: "box"})
    with pipeline as p:
        _ = p | Create(rows) | WriteTable(str(tmp_path), "run-4", "tubelets", PROVENANCE)
    (row,) = read_back(str(tmp_path), "run-4", "tubelets").to_pylist()
    assert (row["video"], row["video_id"], row["category_name"], row["frame_count"]) == ("clip", 3, "box", 2)
    assert [f["source_frame"] for f in row["frames"]] == [2, 4]
    decoded = masks.decode({"size": [row["frames"][0]["height"], row["frames"][0]["width"]],
                            "counts": row["frames"][0]["rle"]})
    np.testing.assert_array_equal(decoded, mask)
    assert row["frames"][1]["score"] == pytest.approx(0.7) and row["frames"][0]["box"] == [10, 5, 30, 15]


def entry(video_id: int, score: float, category_id: int = 1, frames=(None, None)) -> dict:
    return {"video_id": video_id, "category_id": category_id, "score": score, "segmentations": list(frames)}


def test_results_order_is_video_then_score_then_category_then_masks():
    some = masks.encode(np.ones((2, 2), np.uint8))
    entries = [entry(2, 0.9), entry(1, 0.5), entry(1, 0.9, 3), entry(1, 0.9, 2, (some, None)), entry(1, 0.9, 2)]
    ordered = sorted(entries, key=results_order)
    assert ordered == [entries[4], entries[3], entries[2], entries[1], entries[0]]
    assert sorted(reversed(entries), key=results_order) == ordered  # total: the input order does not matter


def test_write_table_file_writes_one_file_with_the_run_id_and_metadata_and_no_temporary(tmp_path):
    folder = str(tmp_path / "run-5" / "dead_letters")
    schema = tables.with_provenance(tables.DEAD_LETTERS, "run-5", **PROVENANCE)
    rows = dead_letter_rows(2)
    url = write_table_file(folder, "clip0.0badc0de", rows, schema, "run-5", {"video_frames": 12})
    assert url == f"{folder}/clip0.0badc0de.parquet" and os.listdir(folder) == ["clip0.0badc0de.parquet"]
    table = pq.read_table(url)
    assert table.to_pylist() == [{**row, "run_id": "run-5"} for row in rows]
    assert tables.provenance(table)["video_frames"] == "12" and tables.provenance(table)["run_id"] == "run-5"


def test_write_table_file_of_no_rows_still_writes_the_schema(tmp_path):
    schema = tables.with_provenance(tables.METRICS, "run-6", **PROVENANCE)
    url = write_table_file(str(tmp_path / "metrics"), tables.PART_FILE, [], schema, "run-6")
    assert pq.read_table(url).num_rows == 0
    assert pq.read_schema(url).equals(parquet_schema(tables.METRICS), check_metadata=False)
