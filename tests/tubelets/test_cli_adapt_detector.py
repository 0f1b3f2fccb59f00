"""``tubelets adapt detector``: the command line over :func:`tubelets.models.domain_adaptation.adapt_detector`."""

import pytest

from tubelets.cli import main
from tubelets.errors import EXIT_USAGE
from tubelets.models.checkpoints import read_checkpoint

TINY = ["--set", "detector.min_size=48", "--set", "detector.max_size=64", "--set", "adapt_detector.batch_size=1",
        "--set", "adapt_detector.target_batch_size=1", "--set", "adapt_detector.target_frames_per_video=3"]


@pytest.fixture(scope="module")
def sets(tiny_shapes_set):
    return tiny_shapes_set("source", 1, 3), tiny_shapes_set("target", 1, 4, domain="shifted")


def test_adapt_detector_writes_the_checkpoint_and_says_so(sets, tmp_path, capsys):
    source, target = sets
    out = tmp_path / "adapted.pt"
    assert main(["adapt", "detector", source, str(out), "--target", f"{target}/videos/*.mp4", "--steps", "2",
                 "--threads", "1", "--no-progress", *TINY]) == 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("trained 2 steps (0->2) on ") and "(unlabelled) and 1 labelled set(s)" in line
    checkpoint = read_checkpoint(str(out))
    assert checkpoint["step"] == 2 and checkpoint["checkpoint_id"] in line
    assert checkpoint["config"]["adapt_detector"]["steps"] == 2


def test_a_target_that_matches_no_video_is_one_line(sets, tmp_path, capsys):
    source, _ = sets
    code = main(["adapt", "detector", source, str(tmp_path / "x.pt"), "--target", str(tmp_path / "none-*.mp4"),
                 "--steps", "1", "--no-progress", *TINY])
    assert code == EXIT_USAGE
    assert "no videos match the target" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
