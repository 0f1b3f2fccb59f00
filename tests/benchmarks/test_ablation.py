import subprocess

import ablation
import pytest
from ablation import set_folder

from tubelets import runs

pytestmark = pytest.mark.smoke


def test_one_variant_on_one_tiny_set_runs_through_the_pipeline_with_the_shapes_vis_preset(tmp_path, bench, capsys,
                                                                                         monkeypatch):
    bench.tiny_set(set_folder(tmp_path, 1234, "default"))
    argv = ["--work", str(tmp_path), "--videos", "1", "--variants", "iou", "--sets", "default", "--workers", "0",
            *bench.as_set_args(bench.TINY_DETECTOR)]
    ablation.main(argv)
    (row,) = bench.markdown_rows(capsys.readouterr().out, "iou")
    assert row[0] == "iou (linking baseline)" and len(row) == 1 + len(ablation.COLUMNS)
    manifest = runs.read_manifest(str(tmp_path / "runs"), ablation.run_id("default", row[0]))
    assert manifest["status"] == runs.COMPLETE
    # The colour identity rules are on for Shapes-VIS (configs/shapes-vis.yaml), off in the defaults.
    assert manifest["config"]["tracker"]["ipdt"]["max_colour_distance"] == 1.0

    def no_new_run(*args, **kwargs):
        raise AssertionError("a complete run was run again")

    monkeypatch.setattr(subprocess, "run", no_new_run)
    ablation.main(argv)  # the run under --work is read
    assert bench.markdown_rows(capsys.readouterr().out, "iou") == [row]


def test_an_unknown_variant_is_refused_with_the_known_ones():
    with pytest.raises(SystemExit):
        ablation.main(["--variants", "iou,nope"])
