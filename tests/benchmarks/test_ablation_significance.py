import json

import ablation
import ablation_significance
import pytest

from tubelets.synth.predictions import noisy_predictions

pytestmark = pytest.mark.smoke


def test_compares_the_ablation_runs_of_the_selected_variants(tmp_path, bench, capsys):
    gt = bench.instances(bench.tiny_set(ablation.set_folder(tmp_path, 1234, "default")))
    for seed, variant in enumerate(v for v in ablation.VARIANTS if v.name in ("iou", "instance")):
        folder = tmp_path / "runs" / ablation.run_id("default", variant.label)
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(noisy_predictions(gt, seed, skip_video_rate=0.0)))
    ablation_significance.main(["--work", str(tmp_path), "--variants", "iou,instance", "--sets", "default",
                                "--samples", "20", "--videos", "1"])
    rows = bench.markdown_rows(capsys.readouterr().out, "default")
    assert [row[1] for row in rows] == ["instance - iou", "instance - iou"]  # intervals, then videos


def test_compares_any_result_files_of_one_set(tmp_path, bench, capsys):
    folder = bench.tiny_set(tmp_path / "tiny")
    paths = []
    for seed, name in enumerate(("ipdt", "pixel")):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(noisy_predictions(bench.instances(folder), seed, skip_video_rate=0.0)))
    ablation_significance.main(["--gt", str(folder / "instances.json"), "--results", f"ipdt={paths[0]}",
                                "--results", f"pixel={paths[1]}", "--samples", "20"])
    assert [row[1] for row in bench.markdown_rows(capsys.readouterr().out, "tiny")] == ["ipdt - pixel"] * 2
