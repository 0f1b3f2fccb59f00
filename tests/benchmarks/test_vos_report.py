import pytest
import vos_report

from tubelets.synth.davis_layout import generate_davis

pytestmark = pytest.mark.smoke


def test_reports_the_three_runs_on_one_tiny_davis_sequence(tmp_path, capsys):
    generate_davis(str(tmp_path / "davis-3"), videos=1, seed=3, width=64, height=48)
    vos_report.main(["--work", str(tmp_path), "--videos", "1", "--seed", "3", "--workers", "0"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| vos (first-appearance mask)",
                                                        "| point (one click per object)",
                                                        "| VIS ipdt, tracks matched to the objects"]
    assert {path.name for path in (tmp_path / "runs").iterdir()} == {"vos", "point", "vis"}
