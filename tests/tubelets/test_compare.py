"""``tubelets compare``: two evaluate runs' stored matches, differences with bootstrap intervals, and the gate.

The runs are written as an ``evaluate`` run leaves them (a manifest, the ``video_matches`` and ``metrics``
tables), from random ground truth and noisy predictions of it: no pipeline, no mask read back.
"""

import json

import numpy as np
import pytest

from tubelets import runs, tables
from tubelets.cli import main
from tubelets.compare import CompareError, Gate, compare_runs, parse_gates, print_comparison, table_rows
from tubelets.errors import EXIT_REGRESSION, ConfigError, RegressionError
from tubelets.metrics.vis import accumulate, match_videos
from tubelets.metrics.vis_store import matches_to_row
from tubelets.synth.predictions import noisy_predictions, random_gt
from tubelets.tables import METRIC_NAMES
from tubelets.transforms.evaluation import metric_rows

VIDEOS = 40
SMALL = ((24, 32), (48, 64))  # small frames: quick to match (compare itself never reads a mask)
GOOD = dict(miss_rate=0.05, max_shift=1, false_positives=(0, 1), skip_video_rate=0.0)
BAD = dict(miss_rate=0.5, max_shift=4, false_positives=(1, 4), skip_video_rate=0.2)


def write_run(output: str, run_id: str, gt: dict, results: list, digest: str = "digest-a", status: str = "complete",
              task: str = "vis") -> None:
    """A run as ``evaluate`` leaves it: a manifest with the data set's digest, matches per video, metric rows."""
    matches, category_ids = match_videos(gt, results)
    runs.claim_run(output, run_id, {"command": "evaluate", "config": {"run": {"task": task}}})
    for m in matches:  # one file per video, as the pipeline writes them
        row = {**matches_to_row(m, f"video-{m.video_id}"), "run_id": run_id}
        tables.write_parquet(tables.to_arrow([row], tables.VIDEO_MATCHES),
                             f"{tables.table_folder(output, run_id, 'video_matches')}/{m.video_id}.parquet")
    names = {c["id"]: c["name"] for c in gt["categories"]}
    rows = [{**row, "run_id": run_id}
            for row in metric_rows(accumulate(matches, category_ids), "shapes", "iou", names)]
    tables.write_rows(rows, output, run_id, "metrics")
    runs.update_manifest(output, run_id, status=status, dataset_digest=digest)


@pytest.fixture(scope="module")
def gt():
    return random_gt(seed=7, videos=VIDEOS, sizes=SMALL, tracks=(1, 4))


@pytest.fixture(scope="module")
def output(gt, tmp_path_factory) -> str:
    """OUTPUT with runs ``good``, ``good-again`` (the same predictions), ``bad``, ``one-video-worse`` and a few
    that cannot be compared."""
    root = str(tmp_path_factory.mktemp("compare"))
    good, bad = noisy_predictions(gt, seed=1, **GOOD), noisy_predictions(gt, seed=2, **BAD)
    write_run(root, "good", gt, good)
    write_run(root, "good-again", gt, good)
    write_run(root, "bad", gt, bad)
    lost = next(a["video_id"] for a in gt["annotations"] if not a["iscrowd"])  # one video's predictions lost
    write_run(root, "one-video-worse", gt, [p for p in good if p["video_id"] != lost])
    write_run(root, "other-data", gt, good, digest="digest-b")
    write_run(root, "still-running", gt, good, status="running")
    write_run(root, "vos", gt, good, task="vos")
    runs.claim_run(root, "segment-only", {"command": "segment", "config": {"run": {"task": "vis"}}})
    runs.update_manifest(root, "segment-only", status="complete")  # no digest, no matches
    tables.write_rows([], root, "before-manifests", "metrics")  # a run folder from before run manifests
    return root


@pytest.fixture(scope="module")
def regression(output):
    return compare_runs(output, "good", "bad", samples=300)


def overall(comparison, metric: str) -> dict:
    return next(row for row in table_rows(comparison) if row["scope"] == "difference"
                and row["category_id"] is None and row[metric] is not None)


def test_a_real_regression_is_caught_with_exit_4(output, capsys):
    status = main(["compare", output, "good", "bad", "--samples", "300", "--fail-on-drop", "AP=0.01"])
    captured = capsys.readouterr()
    assert status == EXIT_REGRESSION == 4
    assert captured.out.startswith("bad (candidate) vs good (baseline)") and "per category" in captured.out
    (line,) = captured.err.splitlines()  # one line on stderr, after the table on stdout
    assert line.startswith("tubelets: error: run bad regressed against good: AP dropped by ")
    assert "more than AP=0.01 allows" in line


def test_the_regression_is_large_and_beyond_chance(regression):
    ap = METRIC_NAMES.index("AP")
    result = regression.result
    assert result.difference[0, ap] < -0.1 and result.low[0, ap] <= result.difference[0, ap] <= result.high[0, ap] < 0
    assert result.a_wins[0, ap] == 0.0  # the bad run never won a resample


def test_a_drop_one_video_makes_is_within_chance_and_passes(output, capsys):
    # A third of the resamples leave the video out and differ by nothing: the interval reaches 0, so even a
    # gate allowing no drop at all passes.
    comparison = compare_runs(output, "good", "one-video-worse", samples=200)
    ap = METRIC_NAMES.index("AP")
    assert comparison.result.difference[0, ap] < 0 and comparison.result.high[0, ap] == 0
    assert [v["video_id"] for v in comparison.videos] == [comparison.videos[0]["video_id"]]  # only that video moved
    assert main(["compare", output, "good", "one-video-worse", "--samples", "200", "--fail-on-drop", "AP=0"]) == 0


def test_a_drop_within_the_allowance_passes_and_an_undefined_number_is_not_checked(output, capsys):
    # Bad is about 20 points of AP below good: a gate allowing 0.5 passes; so does a gate on a number without
    # ground truth (no medium objects in these small frames), said on stderr.
    assert main(["compare", output, "good", "bad", "--samples", "50", "--fail-on-drop", "AP=0.5",
                 "--fail-on-drop", "APm=0"]) == 0
    assert "--fail-on-drop APm=0 not checked: APm is undefined here" in capsys.readouterr().err


def test_a_rerun_of_the_same_config_differs_by_nothing(output, capsys):
    comparison = compare_runs(output, "good", "good-again", samples=100)
    defined = ~np.isnan(comparison.result.a)
    assert np.all(comparison.result.difference[defined] == 0)
    assert np.all(comparison.result.low[defined] == 0) and np.all(comparison.result.high[defined] == 0)
    assert comparison.videos == []
    assert main(["compare", output, "good", "good-again", "--samples", "100", "--fail-on-drop", "AP=0"]) == 0


def test_the_full_set_numbers_are_the_metrics_tables(output):
    # The bootstrap's per-resample scoring, on the whole set in order, gives exactly what evaluate stored.
    for run_id in ("good", "bad"):
        stored = tables.read_table(output, "metrics", run_id).to_pylist()
        comparison = compare_runs(output, "good-again" if run_id == "good" else "good", run_id, samples=1)
        result = comparison.result
        for row in stored:
            index = 0 if row["scope"] == "overall" else 1 + result.categories.index(row["category_id"])
            for k, name in enumerate(METRIC_NAMES):
                expected = np.nan if row[name] is None else row[name]
                assert result.a[index, k] == expected or (np.isnan(expected) and np.isnan(result.a[index, k]))


def test_the_moved_videos_are_named_drops_first(regression):
    videos = regression.videos
    drops = [v for v in videos if v["difference"] < 0]
    assert 0 < len(drops) <= 10 and videos[:len(drops)] == drops
    assert [v["difference"] for v in drops] == sorted(v["difference"] for v in drops)
    assert all(v["video"] == f"video-{v['video_id']}" for v in videos)
    assert all(v["difference"] == pytest.approx(v["candidate"] - v["baseline"]) for v in videos)


def test_json_and_csv_hold_every_number(output, capsys):
    assert main(["compare", output, "good", "bad", "--samples", "20", "--format", "json", "--top", "3"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [row["metric"] for row in found["overall"]] == list(METRIC_NAMES)
    assert {"category_id", "category_name", "baseline", "candidate", "difference", "low", "high"} <= set(
        found["categories"][0])
    assert len(found["videos"]) <= 6 and (found["samples"], found["seed"]) == (20, 0)
    assert main(["compare", output, "good", "bad", "--samples", "20", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '"scope","category_id","category_name","video","metric","baseline","candidate",' \
                       '"difference","low","high"'
    assert sum(line.startswith('"overall"') for line in lines) == 12


def test_the_seed_makes_the_intervals_reproducible(output):
    first, again = (compare_runs(output, "good", "bad", samples=30, seed=5) for _ in range(2))
    np.testing.assert_array_equal(first.result.low, again.result.low)
    other = compare_runs(output, "good", "bad", samples=30, seed=6)
    assert not np.array_equal(np.nan_to_num(first.result.low), np.nan_to_num(other.result.low))


@pytest.mark.parametrize("baseline, candidate, message", [
    ("good", "other-data", "scored other annotations than candidate run other-data"),
    ("good", "still-running", "candidate run still-running: running"),
    ("segment-only", "good", "baseline run segment-only has no stored matches"),
    ("vos", "good", "baseline run vos is a vos run"),
    ("before-manifests", "good", "baseline run before-manifests has no manifest (a run from before manifests"),
    ("good", "good", "the same run (good)"),
    ("good", "nope", "candidate nope: "),
])
def test_runs_that_cannot_be_compared_are_refused_in_one_line(output, capsys, baseline, candidate, message):
    assert main(["compare", output, baseline, candidate]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    with pytest.raises((CompareError, runs.RunNotFoundError)):
        compare_runs(output, baseline, candidate, samples=1)


@pytest.mark.parametrize("value, message", [
    ("ap=0.01", "case-sensitive, did you mean AP?"),
    ("mAP=0.01", "must be one of AP, AP50"),
    ("AP", "give METRIC=X"),
    ("AP=one", "give METRIC=X"),
    ("AP=1.5", "between 0 and 1"),
    ("AP=-0.01", "between 0 and 1"),
    ("AP=nan", "between 0 and 1"),
])
def test_bad_fail_on_drop_values_are_refused_in_one_line(output, capsys, value, message):
    assert main(["compare", output, "good", "bad", "--fail-on-drop", value]) == 2
    err = capsys.readouterr()
    assert message in err.err and len(err.err.splitlines()) == 1 and err.out == ""  # refused before any reading
    with pytest.raises(ConfigError):
        Gate.parse(value)


def test_gates_parse_and_bad_counts_are_refused(output):
    assert parse_gates(["AP=0.01", "AR10=0"]) == [Gate("AP", 0.01), Gate("AR10", 0.0)]
    with pytest.raises(ConfigError, match="--samples must be at least 1"):
        compare_runs(output, "good", "bad", samples=0)


def test_a_gate_fails_with_a_regression_error_after_printing(output, capsys):
    with pytest.raises(RegressionError, match="AR10 dropped by"):
        print_comparison(output, "good", "bad", samples=100, fail_on_drop=["AR10=0.01"])
    assert "AR10" in capsys.readouterr().out


def test_comparison_rows_fit_the_metrics_table(regression):
    rows = table_rows(regression)
    table = tables.to_arrow(rows, tables.METRICS)  # valid rows of the table
    assert set(table.column("scope").to_pylist()) == {"baseline", "difference"}
    assert set(table.column("baseline_run_id").to_pylist()) == {"good"} and set(table.column("run_id").to_pylist()) == {
        "bad"}
    ap = overall(regression, "AP")
    assert ap["difference_low"] <= ap["AP"] <= ap["difference_high"] < 0
    assert all(ap[name] is None for name in METRIC_NAMES if name != "AP")
    baseline = next(r for r in rows if r["scope"] == "baseline" and r["category_id"] is None)
    assert baseline["AP"] == regression.result.b[0, 0] and baseline["difference_low"] is None
