import json

import numpy as np
import pytest

from tubelets import masks, render, runs, tables
from tubelets.cli import main
from tubelets.synth.predictions import noisy_predictions


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "data"
    assert main(["synth", str(root), "--videos", "2", "--seed", "4", "--width", "96", "--height", "64"]) == 0
    return root


def test_synth_writes_the_youtube_vis_layout(dataset):
    gt = json.loads((dataset / "instances.json").read_text())
    assert [v["name"] for v in gt["videos"]] == ["video_0000", "video_0001"]
    assert (dataset / "videos" / "video_0001.mp4").stat().st_size > 0
    assert len(list((dataset / "JPEGImages" / "video_0000").glob("*.jpg"))) == gt["videos"][0]["length"]


def test_synth_writes_the_davis_layout_of_the_same_videos(dataset, tmp_path):
    from tubelets.io.davis import DavisDataset

    root = tmp_path / "davis"
    assert main(["synth", str(root), "--videos", "2", "--seed", "4", "--width", "96", "--height", "64",
                 "--layout", "davis"]) == 0
    gt = json.loads((dataset / "instances.json").read_text())
    davis = DavisDataset(str(root))
    assert davis.sequences() == ["video_0000", "video_0001"]
    assert [davis.frame_count(s) for s in davis.sequences()] == [v["length"] for v in gt["videos"]]
    assert (root / "videos" / "video_0000.mp4").stat().st_size > 0


def test_score_prints_the_twelve_numbers(dataset, tmp_path, capsys):
    gt = json.loads((dataset / "instances.json").read_text())
    results = tmp_path / "results.json"
    results.write_text(json.dumps(noisy_predictions(gt, seed=1)))
    capsys.readouterr()
    assert main(["score", str(dataset / "instances.json"), str(results)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(tables.METRIC_NAMES) <= set(printed) and "per_category" in printed
    assert 0.0 <= printed["AP"] <= 1.0


def test_score_of_the_ground_truth_itself_is_perfect(dataset, tmp_path, capsys):
    gt = json.loads((dataset / "instances.json").read_text())
    perfect = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 1.0,
                "segmentations": a["segmentations"]} for a in gt["annotations"]]
    results = tmp_path / "perfect.json"
    results.write_text(json.dumps(perfect))
    capsys.readouterr()
    main(["score", str(dataset / "instances.json"), str(results)])
    assert json.loads(capsys.readouterr().out)["AP"] == pytest.approx(1.0)


def test_errors_are_one_line_and_exit_2(dataset, tmp_path, capsys):
    assert main(["score", str(dataset / "instances.json"), str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tubelets: error:") and "absent.json" in err and "Traceback" not in err


def _dead_letter(run_id):
    return {"input": f"{run_id}.mp4", "stage": "decode", "error_type": "empty", "message": "m",
            "created_at": tables.utc_now(), "run_id": run_id}


def test_query_formats(tmp_path, capsys, write_run):
    write_run(tmp_path, "r", dead_letters=[{**_dead_letter("r"), "input": "x.mp4"}])
    assert main(["query", str(tmp_path), "SELECT input, error_type FROM dead_letters", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ['"input","error_type"', '"x.mp4","empty"']
    assert main(["query", str(tmp_path), "DROP TABLE dead_letters"]) == 2


def test_query_reads_complete_runs_and_names_the_others(tmp_path, capsys, write_run):
    write_run(tmp_path, "r1", dead_letters=[_dead_letter("r1")])
    write_run(tmp_path, "r2", runs.INTERRUPTED, reason="SIGINT", dead_letters=[_dead_letter("r2")])
    sql = "SELECT run_id FROM dead_letters ORDER BY run_id"
    capsys.readouterr()
    assert main(["query", str(tmp_path), sql, "--format", "csv"]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines() == ['"run_id"', '"r1"']
    assert printed.err.splitlines()[0] == "tubelets: skipped run r2: interrupted (SIGINT)"
    assert "--include-incomplete" in printed.err.splitlines()[-1]
    assert main(["query", str(tmp_path), sql, "--format", "csv", "--include-incomplete"]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines() == ['"run_id"', '"r1"', '"r2"'] and printed.err == ""


@pytest.mark.parametrize("sql", ["SELECT 1", "SELECT * FROM read_text('/etc/hostname')"])
def test_query_of_an_output_without_runs_is_one_line_and_exit_2(tmp_path, capsys, sql):
    assert main(["query", str(tmp_path / "absent"), sql]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tubelets: error:") and "holds no run" in err and len(err.splitlines()) == 1


def test_query_refuses_files_outside_the_runs(tmp_path, capsys, write_run):
    write_run(tmp_path, "r1", dead_letters=[_dead_letter("r1")])
    capsys.readouterr()
    assert main(["query", str(tmp_path), "SELECT * FROM read_csv('/etc/passwd')"]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith("tubelets: error:") and "root:" not in printed.err


def _tubelets_over(dataset, run_id, tubelet_ids):
    """Tubelet rows of video_0000, one square each over its first frame."""
    height, width = 64, 96
    rows = []
    for tubelet_id in tubelet_ids:
        mask = np.zeros((height, width), np.uint8)
        mask[8:24, 8 + 20 * tubelet_id: 24 + 20 * tubelet_id] = 1
        frame = {"frame": 0, "source_frame": 0, "height": height, "width": width, "rle": masks.encode(mask)["counts"],
                 "box": [8.0 + 20 * tubelet_id, 8.0, 24.0 + 20 * tubelet_id, 24.0], "score": 0.9}
        rows.append({"run_id": run_id, "video": str(dataset / "videos" / "video_0000.mp4"), "video_id": None,
                     "tubelet_id": tubelet_id, "category_id": 1, "category_name": "disc", "score": 0.9,
                     "first_frame": 0, "last_frame": 0, "frame_count": 1, "video_length": 1, "frames": [frame],
                     "other_classes": []})
    return rows


@pytest.fixture
def rendered_runs(dataset, tmp_path, write_run):
    """OUTPUT with a complete run a (one tubelet) and a newer interrupted run b (two)."""
    output = tmp_path / "out"
    write_run(output, "a", tubelets=_tubelets_over(dataset, "a", [0]))
    write_run(output, "b", runs.INTERRUPTED, reason="SIGTERM", tubelets=_tubelets_over(dataset, "b", [0, 1]))
    return output


def test_render_draws_the_latest_complete_run(dataset, rendered_runs, tmp_path, capsys):
    video = str(dataset / "videos" / "video_0000.mp4")
    assert main(["render", str(rendered_runs), video, str(tmp_path / "a.mp4")]) == 0
    err = capsys.readouterr().err
    assert "skipped run b: interrupted (SIGTERM)" in err and "rendering run a, the latest complete run" in err
    assert (tmp_path / "a.mp4").stat().st_size > 0
    assert [row["run_id"] for row in render.video_tubelets(str(rendered_runs), video)] == ["a"]
    assert [row["tubelet_id"] for row in render.video_tubelets(str(rendered_runs), video, include_incomplete=True)] == [
        0, 1]
    assert [row["run_id"] for row in render.video_tubelets(str(rendered_runs), video, run_id="b")] == ["b", "b"]
    assert "rendering run b: interrupted (SIGTERM)" in capsys.readouterr().err


def test_render_of_a_run_that_is_not_there_is_one_line_and_exit_2(dataset, rendered_runs, tmp_path, capsys):
    video = str(dataset / "videos" / "video_0000.mp4")
    assert main(["render", str(rendered_runs), video, str(tmp_path / "x.mp4"), "--run-id", "c"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tubelets: error: run c is not in") and "a, b" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()
    assert main(["render", str(tmp_path / "absent"), video, str(tmp_path / "x.mp4")]) == 2
    assert "holds no run" in capsys.readouterr().err


def test_render_without_a_complete_run_says_how_to_pick_one(dataset, tmp_path, write_run, capsys):
    video = str(dataset / "videos" / "video_0000.mp4")
    write_run(tmp_path / "out", "b", runs.RUNNING, tubelets=_tubelets_over(dataset, "b", [0]))
    assert main(["render", str(tmp_path / "out"), video, str(tmp_path / "x.mp4")]) == 2
    assert "no complete run" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "out"), video, str(tmp_path / "x.mp4"), "--include-incomplete"]) == 0
    assert "rendering run b, the latest run" in capsys.readouterr().err


def test_unknown_arguments_are_refused():
    with pytest.raises(SystemExit):
        main(["score", "a", "b", "c"])
