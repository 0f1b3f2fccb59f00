import contextlib
import io
import json
import os
import shutil

import apache_beam as beam
import pytest

from tubelets import masks, runs, tables
from tubelets.cli import main
from tubelets.errors import ConfigError, DatasetError, RunFailedError
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.results import read_results, validate_results
from tubelets.metrics.vis import score_files
from tubelets.pipelines import evaluate, segment
from tubelets.pipelines.run_setup import prepare_run
from tubelets.synth import CATEGORIES
from tubelets.tables import METRIC_NAMES, read_table


@pytest.fixture(scope="module")
def oracle_run(shapes_url, oracle, run_flags, tmp_path_factory):
    """``evaluate`` on the data set with the oracle detector and the iou tracker: (spec, stderr)."""
    output = str(tmp_path_factory.mktemp("evaluate-oracle"))
    stderr = io.StringIO()
    with oracle(), contextlib.redirect_stderr(stderr):
        spec = evaluate.run([shapes_url, output, "--run-id", "oracle", "--tracker", "iou", *run_flags])
    return spec, stderr.getvalue()


@pytest.fixture(scope="module")
def overall(oracle_run) -> dict:
    spec, _ = oracle_run
    rows = read_table(spec.output_url, "metrics", spec.run_id).to_pylist()
    (row,) = [r for r in rows if r["scope"] == "overall"]
    return row


def test_tracking_clean_detections_scores_near_perfectly(overall):
    # Measured: AP 0.9587, AR10 1.0 with 10 tubelets for the 9 instances: every instance is found
    # whole, and the iou tracker splits one track once, which costs a false positive.
    assert overall["AP"] > 0.95 and overall["AR10"] == 1.0
    assert (overall["num_videos"], overall["num_gt_instances"]) == (3, 9) and overall["num_predictions"] >= 9


def test_the_metrics_table_equals_the_scorer_on_the_written_results_file(oracle_run, overall, shapes_url):
    spec, _ = oracle_run
    scored = score_files(f"{shapes_url}/instances.json", f"{spec.run_url}/results.json")
    for name in METRIC_NAMES:
        if scored[name] < 0:  # nothing to score
            assert overall[name] is None, name
        else:
            assert abs(overall[name] - scored[name]) <= 1e-12, name
    assert overall["num_predictions"] == scored["predictions"]


def test_category_rows_carry_the_dataset_names(oracle_run):
    spec, _ = oracle_run
    rows = [r for r in read_table(spec.output_url, "metrics", spec.run_id).to_pylist() if r["scope"] == "category"]
    names = {c["id"]: c["name"] for c in CATEGORIES}
    assert sorted(r["category_id"] for r in rows) == [1, 2, 3, 5]  # the categories with ground truth
    assert all(r["category_name"] == names[r["category_id"]] for r in rows)
    assert all(r["dataset"] == spec.input_url and r["tracker"] == "iou" and r["run_id"] == "oracle" for r in rows)


def test_results_json_is_valid_for_the_dataset(oracle_run, shapes_url):
    spec, _ = oracle_run
    results = read_results(f"{spec.run_url}/results.json")
    validate_results(results, YouTubeVISDataset(shapes_url))
    assert results and all(r["score"] == pytest.approx(0.9) for r in results)


def test_the_tubelets_table_has_one_row_per_tubelet_with_decodable_masks(oracle_run, shapes_url):
    spec, _ = oracle_run
    rows = read_table(spec.output_url, "tubelets", spec.run_id).to_pylist()
    results = read_results(f"{spec.run_url}/results.json")
    assert len(rows) == len(results)
    dataset = YouTubeVISDataset(shapes_url)
    lengths = {v.name: v.length for v in dataset.videos}
    for row in rows:
        assert row["video_length"] == lengths[row["video"]] and row["video_id"] == dataset.video(row["video"]).id
        assert row["frame_count"] == len(row["frames"]) and row["frames"][0]["frame"] == row["first_frame"]
        for frame in row["frames"]:
            mask = masks.decode({"size": [frame["height"], frame["width"]], "counts": frame["rle"]})
            assert mask.shape == (96, 128) and mask.any() and frame["source_frame"] == frame["frame"]
    ids = sorted((row["video"], row["tubelet_id"]) for row in rows)
    assert len(set(ids)) == len(ids)


def test_every_table_is_written_with_the_run_provenance(oracle_run):
    spec, _ = oracle_run
    for table in ("tubelets", "metrics"):  # dead letters: a file per failed input, none here
        found = read_table(spec.output_url, table, spec.run_id)
        assert tables.provenance(found)["run_id"] == "oracle"
        assert tables.provenance(found)["checkpoint_id"] == "untrained"
        assert tables.provenance(found)["input"] == spec.input_url
    assert read_table(spec.output_url, "dead_letters", spec.run_id).num_rows == 0


def test_each_videos_matches_are_stored_and_give_the_runs_metrics(oracle_run, overall):
    from tubelets.metrics.vis import accumulate
    from tubelets.metrics.vis_store import row_to_matches

    spec, _ = oracle_run
    rows = read_table(spec.output_url, "video_matches", spec.run_id).to_pylist()
    assert sorted(row["video"] for row in rows) == ["video_0000", "video_0001", "video_0002"]
    stats = accumulate([row_to_matches(row) for row in rows], [c["id"] for c in CATEGORIES]).stats
    assert all(abs(stats[name] - (overall[name] if overall[name] is not None else -1)) < 1e-12
               for name in METRIC_NAMES)


def test_a_video_that_failed_to_decode_is_scored_as_missed(shapes_url, oracle, run_flags, tmp_path):
    # Its matches are made after the run (it has no rows in the pipeline): all its ground truth missed.
    dataset = shutil.copytree(shapes_url, tmp_path / "shapes")
    (dataset / "videos" / "video_0001.mp4").write_bytes(b"not a video")
    with oracle(), contextlib.redirect_stderr(io.StringIO()):
        spec = evaluate.run([str(dataset), str(tmp_path / "out"), "--run-id", "broken", "--tracker", "iou",
                             *run_flags])
    matches = {row["video"]: row for row in read_table(spec.output_url, "video_matches", "broken").to_pylist()}
    assert sorted(matches) == ["video_0000", "video_0001", "video_0002"]
    assert matches["video_0001"]["num_predictions"] == 0 and matches["video_0001"]["num_gt"] > 0
    (overall,) = [r for r in read_table(spec.output_url, "metrics", "broken").to_pylist() if r["scope"] == "overall"]
    assert overall["num_videos"] == 3 and overall["AR10"] < 1.0
    assert {r["video_id"] for r in read_results(f"{spec.run_url}/results.json")} == {1, 3}


def test_a_failure_while_scoring_fails_the_run_and_a_resume_scores_it(shapes_url, oracle, run_flags, tmp_path,
                                                                      monkeypatch):
    flags = [shapes_url, str(tmp_path), "--tracker", "iou", *run_flags]

    def unwritable(url, entries):
        raise OSError(f"{url}: read-only file system")

    with oracle(), contextlib.redirect_stderr(io.StringIO()):
        with monkeypatch.context() as patch:
            patch.setattr(evaluate, "stream_results", unwritable)
            with pytest.raises(RunFailedError, match="failed while scoring: OSError: .*read-only file system"):
                evaluate.run([*flags, "--run-id", "scored"])
        manifest = runs.read_manifest(str(tmp_path), "scored")
        assert manifest["status"] == "failed" and "--resume scored" in manifest["resume"]
        assert not (tmp_path / "scored" / "results.json").exists()
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            evaluate.run([*flags, "--resume", "scored"])  # every video is done: only the scoring runs again
    assert "3 of 3 inputs finished already" in stderr.getvalue()
    assert runs.read_manifest(str(tmp_path), "scored")["status"] == "complete"
    validate_results(read_results(str(tmp_path / "scored" / "results.json")), YouTubeVISDataset(shapes_url))


def grouping_steps(build, spec) -> list[str]:
    """The labels of the GroupByKeys in the graph ``build`` makes (built, not run)."""
    pipeline = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"]))
    build(pipeline, spec)
    found = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            if isinstance(node.transform, beam.GroupByKey):
                found.append(node.full_label)

    pipeline.visit(Visitor())
    return found


def test_evaluate_groups_no_more_than_segment_does(shapes_url, vis_config, tmp_path):
    # Beam's Dask runner runs each GroupByKey as a shuffle of tasks that grows faster than the bucket; scoring
    # adds none: each video is matched where it is tracked, and the metrics and results.json come after the run.
    # (Reshuffles group too on the DirectRunner; Beam's Dask runner runs them as nothing.)
    spec = prepare_run(shapes_url, str(tmp_path), vis_config)
    grouped = grouping_steps(evaluate.build_pipeline, spec)
    assert grouped == grouping_steps(segment.build_pipeline, spec)
    assert [label for label in grouped if "Reshuffle" not in label] == [
        "GroupProposals/JoinMetaAndFrames/CoGroupByKeyImpl/GroupByKey"]


def test_the_run_prints_its_summary_and_headline(oracle_run):
    spec, stderr = oracle_run
    assert "run oracle: 3 videos, 90 frames" in stderr
    assert "iou: AP 95." in stderr and f"results: {spec.run_url}/results.json" in stderr
    assert "dead letters" not in stderr


def test_a_folder_without_instances_json_is_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="instances.json"):
        evaluate.check_dataset(str(tmp_path))


def test_a_test_split_has_nothing_to_score(tmp_path):
    (tmp_path / "instances.json").write_text(json.dumps({"videos": [], "categories": []}))
    with pytest.raises(DatasetError, match="no annotations"):
        evaluate.check_dataset(str(tmp_path))


def test_the_cli_runs_evaluate_with_an_untrained_detector(tiny_url, run_flags, tmp_path, capsys):
    # A small, fast model: frames at their own size, few detections a frame.
    fast = ["--set", "detector.min_size=48", "--set", "detector.max_size=64",
            "--set", "detector.detections_per_frame=5", "--set", "proposals.torch_threads=1"]
    status = main(["evaluate", tiny_url, str(tmp_path), "--run-id", "cli", *run_flags, *fast])
    assert status == 0
    assert sorted(os.listdir(tmp_path / "cli")) == [
        "manifest.json", "metrics", "results.json", "tubelets", "video_matches",
    ]
    validate_results(read_results(str(tmp_path / "cli" / "results.json")), YouTubeVISDataset(tiny_url))
    (overall,) = [r for r in read_table(str(tmp_path), "metrics", "cli").to_pylist() if r["scope"] == "overall"]
    assert (overall["num_videos"], overall["num_gt_instances"]) == (1, len(YouTubeVISDataset(tiny_url).tracks(1)))
    assert read_table(str(tmp_path), "tubelets", "cli").schema.names == tables.TUBELETS.names
    assert "ipdt: AP " in capsys.readouterr().err  # the default tracker


@pytest.mark.parametrize("setting", ["io.stride=2", "io.fps=5", "io.max_size=64"])
def test_evaluate_refuses_runs_that_skip_or_resize_frames(shapes_url, run_flags, tmp_path, setting):
    # Scored against every frame at full size, such a run would silently get AP 0 (measured: 0.0
    # with stride 2 and the oracle detector); it fails before anything is read or written.
    with pytest.raises(ConfigError, match="io.stride=1, io.fps=null and io.max_size=null"):
        evaluate.run([shapes_url, str(tmp_path / "out"), "--set", setting, *run_flags])
    assert not (tmp_path / "out").exists()
    assert main(["evaluate", shapes_url, str(tmp_path / "out"), "--set", setting, *run_flags]) == 2


# --- evaluate --baseline RUN [--fail-on-drop METRIC=X]: the ended run compared with an earlier one ---------------

def _against_oracle(oracle_run, oracle, run_flags, capsys, run_id, *flags, dataset=None):
    """``evaluate --baseline oracle`` into the oracle run's OUTPUT, through the command line: (status, stderr)."""
    spec, _ = oracle_run
    with oracle():
        status = main(["evaluate", dataset or spec.input_url, spec.output_url, "--run-id", run_id, "--tracker", "iou",
                       "--baseline", "oracle", *run_flags, *flags])
    return status, capsys.readouterr().err


def _comparison_rows(spec, run_id: str) -> list[dict]:
    return [r for r in read_table(spec.output_url, "metrics", run_id).to_pylist() if r["baseline_run_id"] is not None]


def test_a_crippled_run_against_its_baseline_exits_4_and_stores_the_comparison(oracle_run, overall, oracle,
                                                                               run_flags, capsys):
    # Every oracle detection (score 0.9) is below the threshold: AP 0 on each video, a drop no resample undoes.
    status, err = _against_oracle(oracle_run, oracle, run_flags, capsys, "crippled",
                                  "--set", "calibration.score_threshold=0.95", "--fail-on-drop", "AP=0.01")
    spec, _ = oracle_run
    assert status == 4
    assert "crippled (candidate) vs oracle (baseline)" in err and "interval" in err
    assert err.splitlines()[-1].startswith("tubelets: error: run crippled regressed against oracle: AP dropped by 0.9")
    rows = _comparison_rows(spec, "crippled")
    baseline = next(r for r in rows if r["scope"] == "baseline" and r["category_id"] is None)
    assert all(baseline[name] == overall[name] for name in METRIC_NAMES) and baseline["run_id"] == "crippled"
    ap = next(r for r in rows if r["scope"] == "difference" and r["category_id"] is None and r["AP"] is not None)
    assert ap["AP"] == -overall["AP"] and ap["difference_low"] <= ap["AP"] <= ap["difference_high"] < 0
    assert {r["category_id"] for r in rows if r["scope"] == "difference"} == {None, 1, 2, 3, 5}
    assert os.path.isfile(f"{spec.output_url}/crippled/metrics/comparison.parquet")
    manifest = runs.read_manifest(spec.output_url, "crippled")
    assert (manifest["status"], manifest["exit_code"]) == ("complete", 4) and "AP dropped" in manifest["regression"]


def test_a_rerun_against_its_baseline_differs_by_nothing(oracle_run, oracle, run_flags, capsys):
    status, err = _against_oracle(oracle_run, oracle, run_flags, capsys, "rerun", "--fail-on-drop", "AP=0")
    spec, _ = oracle_run
    assert status == 0 and "rerun (candidate) vs oracle (baseline)" in err and "error" not in err
    differences = [r for r in _comparison_rows(spec, "rerun") if r["scope"] == "difference"]
    assert len(differences) >= 5  # at least AP of the overall row and of each of the 4 categories
    for row in differences:
        (value,) = [row[name] for name in METRIC_NAMES if row[name] is not None]
        assert value == row["difference_low"] == row["difference_high"] == 0.0


def test_too_many_failed_inputs_outranks_a_regression(oracle_run, oracle, run_flags, capsys, tmp_path):
    # The same annotations (the same digest), one video unreadable: exit 3, the regression said on a line.
    spec, _ = oracle_run
    dataset = shutil.copytree(spec.input_url, tmp_path / "shapes")
    (dataset / "videos" / "video_0001.mp4").write_bytes(b"not a video")
    status, err = _against_oracle(oracle_run, oracle, run_flags, capsys, "failing", "--set",
                                  "calibration.score_threshold=0.95", "--fail-on-drop", "AP=0.01", "--max-failed", "0",
                                  dataset=str(dataset))
    assert status == 3
    assert "tubelets: run failing regressed against oracle: AP dropped by" in err
    assert err.splitlines()[-1].startswith("tubelets: error: 1 of 3 inputs went to dead letters")
    assert runs.read_manifest(spec.output_url, "failing")["exit_code"] == 3


def _fake_run(output: str, run_id: str, status: str = "complete", digest: str = "", matches: bool = True,
              task: str = "vis") -> None:
    runs.claim_run(output, run_id, {"command": "evaluate", "config": {"run": {"task": task}}})
    if matches:
        tables.write_rows([], output, run_id, "video_matches")
    runs.update_manifest(output, run_id, status=status, **({"dataset_digest": digest} if digest else {}))


@pytest.mark.parametrize("baseline, message", [
    (dict(digest="0123456789abcdef"), "scored other annotations than"),
    (dict(status="interrupted"), "--baseline run base: interrupted"),
    (dict(matches=False), "--baseline run base has no stored matches"),
    (dict(task="vos"), "--baseline run base is a vos run"),
    (None, "--baseline base: "),
])
def test_a_bad_baseline_is_refused_before_any_video(shapes_url, run_flags, tmp_path, capsys, baseline, message):
    output = tmp_path / "out"
    if baseline is not None:
        _fake_run(str(output), "base", **{"digest": evaluate.dataset_digest(shapes_url), **baseline})
    assert main(["evaluate", shapes_url, str(output), "--baseline", "base", *run_flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert (os.listdir(output) == ["base"]) if baseline is not None else not output.exists()  # no run was started


@pytest.mark.parametrize("flags, message", [
    (["--fail-on-drop", "AP=0.01"], "--fail-on-drop compares with a baseline: give --baseline"),
    (["--baseline", "base", "--fail-on-drop", "AP=2"], "X an absolute drop between 0 and 1"),
    (["--baseline", "base", "--fail-on-drop", "ap=0.01"], "did you mean AP?"),
    (["--baseline", "base", "--run-id", "base"], "--baseline base is this run"),
    (["--baseline", "base", "--task", "vos"], "compare VIS runs"),
])
def test_bad_baseline_flags_are_refused_in_one_line(shapes_url, run_flags, tmp_path, capsys, flags, message):
    _fake_run(str(tmp_path), "base", digest=evaluate.dataset_digest(shapes_url))
    assert main(["evaluate", shapes_url, str(tmp_path), *flags, *run_flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == ["base"]
