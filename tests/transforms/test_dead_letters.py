import datetime as dt

from apache_beam import pvalue

from tubelets import tables
from tubelets.errors import DatasetError, VideoDecodeError
from tubelets.transforms.dead_letters import TAG, dead_letter


def test_a_decode_error_becomes_a_row_whose_type_is_its_reason():
    output = dead_letter("gs://b/clip.mp4", "decode", VideoDecodeError("gs://b/clip.mp4", "truncated", "cut at 3 s"))
    assert isinstance(output, pvalue.TaggedOutput) and output.tag == TAG == "dead_letters"
    row = output.value
    assert {k: row[k] for k in ("input", "stage", "error_type")} == {
        "input": "gs://b/clip.mp4", "stage": "decode", "error_type": "truncated"
    }
    assert row["message"] == "cannot decode video 'gs://b/clip.mp4': truncated (cut at 3 s)"
    assert row["created_at"].tzinfo is dt.timezone.utc and row["created_at"].microsecond == 0


def test_any_other_error_is_named_by_its_class():
    row = dead_letter("video_0003", "proposals", DatasetError("frame 3 is missing")).value
    assert (row["error_type"], row["message"], row["stage"]) == ("DatasetError", "frame 3 is missing", "proposals")


def test_rows_fit_the_dead_letters_table_once_the_run_id_is_added():
    rows = [dead_letter(f"v{i}", "decode", ValueError("bad")).value for i in range(2)]
    table = tables.to_arrow([{**row, "run_id": "r"} for row in rows], tables.DEAD_LETTERS)
    assert table.column("input").to_pylist() == ["v0", "v1"]
    assert set(rows[0]) | {"run_id"} == set(tables.DEAD_LETTERS.names)
