import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tubelets import runs, tables
from tubelets.errors import ConfigError


def _tubelet_row(run_id="run-a", tubelet_id=0):
    frame = {"frame": 2, "source_frame": 4, "height": 4, "width": 4, "rle": "0g0", "box": [0.0, 0.0, 2.0, 2.0],
             "score": 0.5}
    return {
        "run_id": run_id, "video": "v.mp4", "video_id": 3, "tubelet_id": tubelet_id, "category_id": 1,
        "category_name": "disc", "score": 0.9, "first_frame": 2, "last_frame": 2, "frame_count": 1,
        "video_length": 5, "frames": [frame], "other_classes": [],
    }


def test_write_rows_reads_back_with_schema_and_provenance(tmp_path):
    url = tables.write_rows([_tubelet_row()], str(tmp_path), "run-a", "tubelets", config_hash="c0ffee",
                            checkpoint_id="ck1")
    assert url.endswith("run-a/tubelets/part-00000-of-00001.parquet")
    table = pq.read_table(url)
    assert table.schema.equals(tables.TUBELETS)
    assert table.to_pylist()[0]["frames"][0]["box"] == [0.0, 0.0, 2.0, 2.0]
    assert tables.provenance(table) == {
        "version": tables.tubelets.__version__, "schema_version": tables.SCHEMA_VERSION,
        "run_id": "run-a", "config_hash": "c0ffee", "checkpoint_id": "ck1",
    }


def test_runs_sit_side_by_side(tmp_path, write_run):
    write_run(tmp_path, "r1", tubelets=[_tubelet_row("r1")])
    write_run(tmp_path, "r2", tubelets=[_tubelet_row("r2"), _tubelet_row("r2", 1)])
    assert tables.read_table(str(tmp_path), "tubelets").num_rows == 3
    assert tables.read_table(str(tmp_path), "tubelets", run_id="r1").num_rows == 1


@pytest.mark.parametrize("root", ["local", "memory"])
def test_read_table_reads_complete_runs_unless_told_or_given_a_run(tmp_path, write_run, root):
    output = str(tmp_path) if root == "local" else f"memory://tables-{uuid.uuid4().hex}"
    write_run(output, "done", tubelets=[_tubelet_row("done")])
    write_run(output, "going", runs.RUNNING, tubelets=[_tubelet_row("going"), _tubelet_row("going", 1)])
    write_run(output, "cut", runs.INTERRUPTED, tubelets=[_tubelet_row("cut")])
    tables.write_rows([_tubelet_row("old")], output, "old", "tubelets")  # a run from before manifests

    def run_ids(table):
        return sorted(table.column("run_id").to_pylist())

    assert run_ids(tables.read_table(output, "tubelets")) == ["done"]
    assert run_ids(tables.read_table(output, "tubelets", include_incomplete=True)) == ["cut", "done", "going", "going",
                                                                                      "old"]
    # A pipeline reads its own run's tables before the run is marked complete.
    assert run_ids(tables.read_table(output, "tubelets", "going")) == ["going", "going"]
    assert run_ids(tables.read_table(f"{output}/going", "tubelets", "going")) == ["going", "going"]
    assert run_ids(tables.read_table(f"{output}/done", "tubelets")) == ["done"]
    assert tables.read_table(f"{output}/cut", "tubelets").num_rows == 0
    assert run_ids(tables.read_table(f"{output}/old", "tubelets", include_incomplete=True)) == ["old"]
    assert tables.read_table(output, "tubelets", "absent").num_rows == 0


@pytest.mark.parametrize("run_id", ["*", "../elsewhere", "a/b", ""])
def test_read_table_takes_a_run_id_not_a_pattern_or_a_path(tmp_path, write_run, run_id):
    write_run(tmp_path, "r1", tubelets=[_tubelet_row("r1")])
    with pytest.raises(ConfigError, match="run id"):
        tables.read_table(str(tmp_path), "tubelets", run_id)


def test_table_files_lists_each_run_given(tmp_path, write_run):
    write_run(tmp_path, "r1", tubelets=[_tubelet_row("r1")], metrics=[])
    write_run(tmp_path, "r2", tubelets=[_tubelet_row("r2")])
    fs, files = tables.table_files(str(tmp_path), ["r2", "r1"])
    assert [path.split("/")[-3] for path in files["tubelets"]] == ["r2", "r1"]
    assert len(files["metrics"]) == 1 and files["dead_letters"] == [] and fs.exists(files["tubelets"][0])


def test_skipped_lines_name_each_run_and_the_flag():
    skipped = [runs.RunInfo("r3", runs.INTERRUPTED, "SIGTERM"), runs.RunInfo("r4", runs.NO_MANIFEST)]
    lines = tables.skipped_lines(skipped)
    assert lines[:2] == ["tubelets: skipped run r3: interrupted (SIGTERM)",
                         f"tubelets: skipped {skipped[1].describe()}"]
    assert len(lines) == 3 and "--include-incomplete" in lines[2] and tables.skipped_lines([]) == []


def test_missing_required_value_is_rejected():
    row = _tubelet_row()
    row["category_name"] = None
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, ValueError)):
        tables.to_arrow([row], tables.TUBELETS)


def test_empty_table_and_unknown_table(tmp_path):
    assert tables.read_table(str(tmp_path), "metrics").schema.equals(tables.METRICS)
    with pytest.raises(ValueError, match="unknown table"):
        tables.table_folder(str(tmp_path), "r", "nope")


def test_metrics_schema_has_all_twelve_numbers():
    assert len(tables.METRIC_NAMES) == 12
    assert all(tables.METRICS.field(name).type == pa.float64() for name in tables.METRIC_NAMES)


def _vos_metric_row(**changes):
    row = {"run_id": "r", "dataset": "davis", "tracker": "ipdt", "task": "vos", "scope": "object", "sequence": "bear",
           "object_id": 2, **dict.fromkeys(tables.VOS_METRIC_NAMES, 0.5), "prompt_iou": None, "num_videos": 1,
           "num_gt_instances": 2, "num_predictions": 2, "created_at": tables.utc_now()}
    return {**row, **changes}


def test_metrics_schema_has_the_vos_columns():
    assert tables.TASKS == ("vis", "vos", "point") and tables.SCHEMA_VERSION == "6"
    assert len(tables.VOS_METRIC_NAMES) == 7 and "JF_mean" in tables.VOS_METRIC_NAMES
    for name in (*tables.VOS_METRIC_NAMES, "prompt_iou"):
        assert tables.METRICS.field(name).type == pa.float64() and tables.METRICS.field(name).nullable
    assert tables.METRICS.field("object_id").type == pa.int32() and tables.METRICS.field("sequence").type == pa.string()
    assert not tables.METRICS.field("task").nullable


def test_a_vos_metrics_row_reads_back_and_needs_its_task(tmp_path):
    tables.write_rows([_vos_metric_row(), _vos_metric_row(scope="overall", sequence=None, object_id=None,
                                                          prompt_iou=0.75)], str(tmp_path), "r", "metrics")
    back = tables.read_table(str(tmp_path), "metrics", "r").to_pylist()
    assert [(r["scope"], r["sequence"], r["object_id"], r["prompt_iou"], r["AP"]) for r in back] == [
        ("object", "bear", 2, None, None), ("overall", None, None, 0.75, None)]
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, ValueError)):
        tables.to_arrow([_vos_metric_row(task=None)], tables.METRICS)


def test_write_rows_fills_in_the_run_id(tmp_path):
    row = {key: value for key, value in _tubelet_row().items() if key != "run_id"}
    url = tables.write_rows([row], str(tmp_path), "run-b", "tubelets")
    assert url.endswith(f"run-b/tubelets/{tables.PART_FILE}.parquet")
    assert pq.read_table(url).column("run_id").to_pylist() == ["run-b"]


def test_an_exclusive_write_never_replaces_a_file(tmp_path):
    schema = tables.with_provenance(tables.TUBELETS, "run-c")
    folder = str(tmp_path / "run-c" / "tubelets")
    url = tables.write_table_file(folder, "v", [_tubelet_row()], schema, "run-c", exclusive=True)
    with pytest.raises(FileExistsError):
        tables.write_table_file(folder, "v", [_tubelet_row(tubelet_id=1)], schema, "run-c", exclusive=True)
    assert pq.read_table(url).column("tubelet_id").to_pylist() == [0]
    tables.write_table_file(folder, "v", [_tubelet_row(tubelet_id=1)], schema, "run-c")  # not exclusive: replaced
    assert pq.read_table(url).column("tubelet_id").to_pylist() == [1]
    assert sorted(path.name for path in (tmp_path / "run-c" / "tubelets").iterdir()) == ["v.parquet"]


def test_a_write_that_fails_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    def half_written(table, where, **kwargs):
        where.write(b"PAR1")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_written)
    with pytest.raises(OSError, match="disk full"):
        tables.write_parquet(pa.table({"x": [1]}), str(tmp_path / "run-d" / "x.parquet"))
    assert list((tmp_path / "run-d").iterdir()) == []
