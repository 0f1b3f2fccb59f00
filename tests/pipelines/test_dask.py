"""The pipelines on Beam's Dask runner (``--runner dask``): what the DirectRunner gives, bit for bit.

Beam 2.78's Dask runner does not split tagged outputs, computes only the last
step's lineage, recomputes a side input's upstream per reading task, reports
no metrics and runs a one-element ``Create`` on one worker
(:mod:`tubelets.transforms.portable`). Each test here fails on one of those
where the project's graph does not avoid it. All of them run on one
LocalCluster of 2 worker processes, 1 thread each (conftest's ``dask_address``).
"""

from __future__ import annotations

import json
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from beam_dofns import Parity

from tubelets import runs
from tubelets.pipelines import evaluate, segment
from tubelets.pipelines.options import pipeline_options
from tubelets.transforms.portable import GatherAll, SplitOutputs, join_leaves

pytestmark = pytest.mark.slow

# The shipped detector at the frames' own size (128x96: cheap), the linking tracker.
FLAGS = ["--tracker", "iou", "--set", "detector.device=cpu", "--set", "detector.min_size=96",
         "--set", "detector.max_size=128", "--progress-every", "0"]
DIRECT = ["--direct_running_mode=in_memory"]
NOT_COMPARED = {"run_id", "created_at"}  # the run's name, and the time a row was made


# ---- the portable transforms, on Dask -------------------------------------------------------------------


def write_json(values, path):
    with open(path, "w") as handle:
        json.dump(sorted(values), handle)
    return path


def logged(x, path):
    """Stands for an expensive stage (decoding, inference): each call leaves a line."""
    with open(path, "a") as handle:
        handle.write(f"{x}\n")
    return x


def run_on_dask(dask_address, build) -> None:
    options = pipeline_options(["--runner", "dask", "--dask-address", dask_address])
    pipeline = beam.Pipeline(options=options)
    build(pipeline)
    join_leaves(pipeline)
    result = pipeline.run()
    try:
        result.wait_until_finish()
    finally:
        result.client.close()


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def test_split_outputs_give_each_tag_its_own_elements_on_dask(dask_address, tmp_path):
    def build(p):
        outs = p | beam.Create(range(10)) | "Split" >> SplitOutputs(Parity(), "odd", "four", main="even")
        for name in ("even", "odd", "four"):
            outs[name] | f"All_{name}" >> GatherAll() | f"Write_{name}" >> beam.Map(write_json, str(tmp_path / name))

    run_on_dask(dask_address, build)
    assert read_json(tmp_path / "even") == [0, 2, 4, 6, 8]
    assert read_json(tmp_path / "odd") == [1, 3, 5, 7, 9]
    assert read_json(tmp_path / "four") == [0, 4, 8]


def test_every_sink_runs_on_dask(dask_address, tmp_path):
    def build(p):
        numbers = p | beam.Create([1, 2, 3])
        numbers | "First" >> beam.Map(logged, str(tmp_path / "first"))
        numbers | "Second" >> beam.Map(logged, str(tmp_path / "second"))

    run_on_dask(dask_address, build)
    assert sorted((tmp_path / "first").read_text().split()) == sorted((tmp_path / "second").read_text().split())
    assert sorted((tmp_path / "first").read_text().split()) == ["1", "2", "3"]


def test_gather_all_runs_its_upstream_once_on_dask(dask_address, tmp_path):
    calls = str(tmp_path / "calls")

    def build(p):
        numbers = p | beam.Create(range(6)) | "Expensive" >> beam.Map(logged, calls)
        numbers | "All" >> GatherAll() | "Write" >> beam.Map(write_json, str(tmp_path / "all"))
        (numbers | "None" >> beam.Filter(lambda x: x < 0) | "AllOfNone" >> GatherAll()
         | "WriteNone" >> beam.Map(write_json, str(tmp_path / "none")))

    run_on_dask(dask_address, build)
    assert read_json(tmp_path / "all") == [0, 1, 2, 3, 4, 5] and read_json(tmp_path / "none") == []
    assert sorted(open(calls).read().split()) == [str(x) for x in range(6)]  # once each, not once per reader


# ---- segment and evaluate: the DirectRunner's results ---------------------------------------------------


def file_rows(output, run_id: str, table: str) -> dict[str, list[dict]]:
    """``{file name: rows}`` of one table of a run, without the columns two runs never share."""
    folder = os.path.join(runs.run_url(str(output), run_id), table)
    found = {}
    for name in sorted(os.listdir(folder)):
        rows = pq.read_table(os.path.join(folder, name)).to_pylist()
        found[name] = [{key: value for key, value in row.items() if key not in NOT_COMPARED} for row in rows]
    return found


def folder_tree(output, run_id: str) -> list[str]:
    root = runs.run_url(str(output), run_id)
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, dirs, files in os.walk(root) for name in dirs + files)


@pytest.fixture(scope="module")
def mixed_glob(copy_videos, tmp_path_factory) -> str:
    """The data set's three mp4s and a text file named .mp4 (a dead letter)."""
    folder = copy_videos(tmp_path_factory.mktemp("dask-inputs"))
    (folder / "notes.mp4").write_text("these are my notes, not a video\n")
    return f"{folder}/*.mp4"


def test_segment_on_dask_writes_the_direct_runners_tubelets_and_dead_letters(mixed_glob, dask_flags, tmp_path, capsys):
    segment.run([mixed_glob, str(tmp_path), "--run-id", "direct", *FLAGS, *DIRECT])
    segment.run([mixed_glob, str(tmp_path), "--run-id", "dask", *FLAGS, *dask_flags])
    stderr = capsys.readouterr().err

    tubelets = file_rows(tmp_path, "dask", "tubelets")
    assert len(tubelets) == 3 and sum(map(len, tubelets.values())) > 0
    assert tubelets == file_rows(tmp_path, "direct", "tubelets")
    dead = file_rows(tmp_path, "dask", "dead_letters")
    assert [row["input"].rsplit("/", 1)[1] for rows in dead.values() for row in rows] == ["notes.mp4"]
    assert dead == file_rows(tmp_path, "direct", "dead_letters")
    assert folder_tree(tmp_path, "dask") == folder_tree(tmp_path, "direct")  # nothing else (no beam-temp-*)

    # No metrics from this runner: the counters come from the run's files, proposals are not counted.
    direct, dask = (runs.read_manifest(str(tmp_path), run)["counters"] for run in ("direct", "dask"))
    assert dask == {**direct, "proposals": None} and dask["videos"] == 3 and dask["dead_letters"] == 1
    assert f"run dask: 3 videos, {dask['frames']} frames" in stderr and "not counted: proposals" in stderr


def test_segment_on_dask_in_waves_of_one_video_writes_what_one_pipeline_does(mixed_glob, dask_flags, tmp_path,
                                                                              capsys):
    segment.run([mixed_glob, str(tmp_path), "--run-id", "one", *FLAGS, *dask_flags])
    segment.run([mixed_glob, str(tmp_path), "--run-id", "waves", *FLAGS, *dask_flags,
                 "--set", "run.dask_wave_videos=1"])  # four pipelines, one after the other
    assert "run waves: 3 videos, " in capsys.readouterr().err  # the waves' counters, added up
    for table in ("tubelets", "dead_letters"):
        assert file_rows(tmp_path, "waves", table) == file_rows(tmp_path, "one", table)
    assert folder_tree(tmp_path, "waves") == folder_tree(tmp_path, "one")
    counters = [runs.read_manifest(str(tmp_path), run)["counters"] for run in ("one", "waves")]
    assert counters[0] == counters[1]


def test_evaluate_on_dask_writes_the_direct_runners_results_and_metrics(shapes_url, dask_flags, tmp_path):
    evaluate.run([shapes_url, str(tmp_path), "--run-id", "direct", *FLAGS, *DIRECT])
    evaluate.run([shapes_url, str(tmp_path), "--run-id", "dask", *FLAGS, *dask_flags])
    evaluate.run([shapes_url, str(tmp_path), "--run-id", "waves", *FLAGS, *dask_flags,
                  "--set", "run.dask_wave_videos=2"])  # two pipelines: 2 videos, then 1

    results = [(tmp_path / run / "results.json").read_bytes() for run in ("direct", "dask", "waves")]
    assert results[0] == results[1] == results[2] and len(json.loads(results[1])) > 0
    for run in ("dask", "waves"):
        metrics = file_rows(tmp_path, run, "metrics")
        assert list(metrics) == ["part-00000-of-00001.parquet"] and metrics == file_rows(tmp_path, "direct", "metrics")
        assert file_rows(tmp_path, run, "video_matches") == file_rows(tmp_path, "direct", "video_matches")
        assert file_rows(tmp_path, run, "tubelets") == file_rows(tmp_path, "direct", "tubelets")
        assert folder_tree(tmp_path, run) == folder_tree(tmp_path, "direct")  # no beam-temp-* left

