import json

import pytest

from tubelets import tables
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


def test_query_formats(tmp_path, capsys):
    row = {"input": "x.mp4", "stage": "decode", "error_type": "empty", "message": "m", "created_at": tables.utc_now(), "run_id": "r"}
    tables.write_rows([row], str(tmp_path), "r", "dead_letters")
    assert main(["query", str(tmp_path), "SELECT input, error_type FROM dead_letters", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ['"input","error_type"', '"x.mp4","empty"']
    assert main(["query", str(tmp_path), "DROP TABLE dead_letters"]) == 2


def test_unknown_arguments_are_refused():
    with pytest.raises(SystemExit):
        main(["score", "a", "b", "c"])
