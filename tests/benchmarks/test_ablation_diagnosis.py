import json

import ablation
import ablation_diagnosis
import pytest

from tubelets.synth.predictions import noisy_predictions

pytestmark = pytest.mark.smoke


def fake_runs(work, bench, variants: list[str]) -> None:
    """The ablation's folder as ``ablation.py`` leaves it, with noisy copies of the truth as each run's results."""
    gt = bench.instances(bench.tiny_set(ablation.set_folder(work, 1234, "default")))
    for seed, variant in enumerate(v for v in ablation.VARIANTS if v.name in variants):
        folder = work / "runs" / ablation.run_id("default", variant.label)
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(noisy_predictions(gt, seed, skip_video_rate=0.0)))


def test_diagnoses_each_run_of_the_selected_variants(tmp_path, bench, capsys):
    fake_runs(tmp_path, bench, ["iou", "ipdt"])
    ablation_diagnosis.main(["--work", str(tmp_path), "--variants", "iou,ipdt", "--sets", "default"])
    rows = bench.markdown_rows(capsys.readouterr().out, "default")
    assert [row[1] for row in rows] == ["iou (linking baseline)", "ipdt"]
    assert all(len(row) == ablation_diagnosis.HEADER.count("|") - 1 for row in rows)


def test_a_missing_run_says_what_to_run(tmp_path, bench):
    fake_runs(tmp_path, bench, ["iou"])
    with pytest.raises(SystemExit, match="benchmarks/ablation.py"):
        ablation_diagnosis.main(["--work", str(tmp_path), "--variants", "iou,ipdt", "--sets", "default"])
