import json

import ablation_significance
import pytest

from tubelets.synth.predictions import noisy_predictions

pytestmark = pytest.mark.smoke


def test_compares_the_ablation_runs_of_the_selected_variants(tmp_path, bench, capsys):
    bench.fake_runs(tmp_path, ["iou", "instance"])
    ablation_significance.main(["--work", str(tmp_path), "--variants", "iou,instance", "--sets", "default",
                                "--samples", "20", "--videos", "1"])
    rows = bench.markdown_rows(capsys.readouterr().out, "default")
    assert [row[1] for row in rows] == ["instance - iou", "instance - iou"]  # intervals, then videos


def test_compares_any_result_files_of_one_set(tmp_path, bench, capsys):
    folder = bench.tiny_set(tmp_path / "tiny", write_videos=False, write_jpegs=False)
    paths = []
    for seed, name in enumerate(("ipdt", "pixel")):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(noisy_predictions(bench.instances(folder), seed, skip_video_rate=0.0)))
    ablation_significance.main(["--gt", str(folder / "instances.json"), "--results", f"ipdt={paths[0]}",
                                "--results", f"pixel={paths[1]}", "--samples", "20"])
    assert [row[1] for row in bench.markdown_rows(capsys.readouterr().out, "tiny")] == ["ipdt - pixel"] * 2
