import pytest
import score_vis

pytestmark = pytest.mark.smoke


def test_scores_a_tiny_results_file_and_the_reference_agrees(tmp_path, capsys):
    score_vis.main(["--videos", "2", "--unique-videos", "1", "--frames", "2", "--tracks", "1", "--height", "16",
                    "--width", "16", "--categories", "2", "--false-positives", "0", "1", "--reference-videos", "1",
                    "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "data: 2 videos, 4 frames" in out
    reference = next(line for line in out.splitlines() if line.startswith("reference on 1 videos"))
    assert float(reference.split("max |diff| ")[1].split(")")[0]) < 1e-9
