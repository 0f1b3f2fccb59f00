"""benchmarks/adaptation.py on tiny sets: the DANN row and the shipped detector on both domains."""

import adaptation
import pytest

pytestmark = pytest.mark.smoke


@pytest.mark.slow  # one adapt run, three evaluate-detector and evaluate runs, each a process: about 45 s
def test_reports_dann_and_the_source_domain_row_on_tiny_sets(tmp_path, capsys, bench):
    for name, (offset, domain) in adaptation.SETS.items():  # the sets in this process: cheaper than `tubelets synth`
        bench.tiny_set(tmp_path / "data" / name, seed=7100 + offset, domain=domain)
    detector = [arg for override in bench.TINY_DETECTOR for arg in ("--set", override)]
    adaptation.main(["--work", str(tmp_path), "--videos", "1", "--train-videos", "1", "--width", "64", "--height",
                     "48", "--steps", "2", "--rows", "none", "dann", *detector])
    out = capsys.readouterr().out
    rows = bench.markdown_rows(out, "")
    assert [row[0] for row in rows[2:]] == [adaptation.ROWS["none"], adaptation.ROWS["dann"]]
    assert rows[2][1] == "0" and rows[3][1] == "2"
    assert all(0 <= float(cell) <= 100 for row in rows[2:] for cell in (row[3], row[4], row[5]))
    assert "on the SOURCE-domain test set" in out
    assert (tmp_path / "detectors" / "dann.pt").exists()
    assert {path.name for path in (tmp_path / "runs").iterdir()} == {"none-shifted-test", "dann-shifted-test",
                                                                     "none-source-test"}
