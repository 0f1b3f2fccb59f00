"""benchmarks/pixel_adaptation.py on tiny shifted sets: the four VOS rows and their runs."""

import pixel_adaptation
import pytest

pytestmark = pytest.mark.smoke

SHIPPED = "(a) supervised (`builtin:tracker-vos-small`)"


@pytest.mark.slow  # two adapt runs and four evaluate runs (Beam, in memory): about 45 s
def test_reports_the_four_vos_runs_on_tiny_shifted_sets(tmp_path, capsys, bench):
    pixel_adaptation.main(["--work", str(tmp_path), "--train-videos", "1", "--test-videos", "1", "--width", "64",
                           "--height", "48", "--steps", "1", "--held-out-samples", "2",
                           "--set", "adapt_pixel.batch_size=1", "--set", "adapt_pixel.frames_per_video=5",
                           "--set", "adapt_pixel.colour_dropout=[ab]"])
    rows = bench.markdown_rows(capsys.readouterr().out, "(")
    assert [row[0] for row in rows] == [f"{SHIPPED}, source-domain test", SHIPPED,
                                        "(b) self-supervised embedding alone (from scratch)",
                                        "(c) both: supervised, fine-tuned self-supervised",
                                        "(a) supervised embedding, label propagation (no head)",
                                        "(b) self-supervised embedding, label propagation (no head)",
                                        "(c) both, label propagation (no head)"]
    assert rows[0][7] == "-" and all(float(row[7]) >= 0 for row in rows[1:4])
    assert all(0 <= float(row[1]) <= 100 for row in rows)
    assert {path.name for path in (tmp_path / "runs").iterdir()} == {"supervised-source", "supervised",
                                                                     "self-supervised", "both"}
