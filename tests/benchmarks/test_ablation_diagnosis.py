import ablation_diagnosis
import pytest

pytestmark = pytest.mark.smoke


def test_diagnoses_each_run_of_the_selected_variants(tmp_path, bench, capsys):
    bench.fake_runs(tmp_path, ["iou", "ipdt"])
    ablation_diagnosis.main(["--work", str(tmp_path), "--variants", "iou,ipdt", "--sets", "default"])
    rows = bench.markdown_rows(capsys.readouterr().out, "default")
    assert [row[1] for row in rows] == ["iou (linking baseline)", "ipdt"]
    assert all(len(row) == ablation_diagnosis.HEADER.count("|") - 1 for row in rows)


def test_a_missing_run_says_what_to_run(tmp_path, bench):
    bench.fake_runs(tmp_path, ["iou"])
    with pytest.raises(SystemExit, match="benchmarks/ablation.py"):
        ablation_diagnosis.main(["--work", str(tmp_path), "--variants", "iou,ipdt", "--sets", "default"])
