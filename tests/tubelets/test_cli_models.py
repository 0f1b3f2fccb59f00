"""``tubelets train detector|tracker`` and ``tubelets evaluate-detector``: flags to config, one real run each."""

import json
import subprocess
import sys

import pytest

from tubelets.cli import build_parser, main

TINY_DETECTOR = ["--set", "detector.min_size=48", "--set", "detector.max_size=64"]
TINY_HEADS = "{embedding_dim: 8, siamese_channels: 16, segmentation_channels: 8, local_radius: 2}"


@pytest.fixture(scope="module")
def tiny_shapes(tiny_shapes_set) -> str:
    """Two Shapes-VIS videos of 64x48 frames (JPEG only), seed 7."""
    return tiny_shapes_set("shapes", videos=2, seed=7, write_videos=False)


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory) -> str:
    """An untrained 3-class ``small`` detector saved as a checkpoint; its URL."""
    import torch

    from tubelets.models.checkpoints import make_checkpoint, write_checkpoint
    from tubelets.models.detector import build_detector

    torch.manual_seed(0)
    model = build_detector({"preset": "small", "num_classes": 3, "min_size": 48, "max_size": 64, "checkpoint": None})
    url = str(tmp_path_factory.mktemp("detector") / "detector.pt")
    write_checkpoint(url, make_checkpoint(model, preset="small", categories=[{"id": 1, "name": "c1"},
                                                                             {"id": 2, "name": "c2"}], config={}))
    return url


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """The commands run with ``--threads 1`` (one thread per test worker); the process gets its count back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_the_command_line_starts_without_torch():
    code = "import sys; from tubelets.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_train_needs_a_model_and_takes_one_or_several_data_sets(tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["train"])
    assert stopped.value.code == 2
    assert build_parser().parse_args(["train", "detector", "a", "out.pt"]).dataset == ["a"]
    assert build_parser().parse_args(["train", "detector", "a", "b", "out.pt"]).dataset == ["a", "b"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "tracker", "a", "b", "out.pt"])  # the tracker trains on one


def test_train_detector_flags_become_config_overrides(tiny_shapes, tmp_path, capsys):
    import torch

    from tubelets.models.checkpoints import read_checkpoint
    from tubelets.models.detection_data import FrameDetectionDataset

    out = str(tmp_path / "both.pt")
    assert main(["train", "detector", tiny_shapes, tiny_shapes, out, "--steps", "1", "--seed", "5", "--no-progress",
                 "--device", "cpu", "--threads", "1", *TINY_DETECTOR, "--set", "train_detector.batch_size=1"]) == 0
    section = read_checkpoint(out)["config"]["train_detector"]
    assert (section["steps"], section["seed"], section["batch_size"]) == (1, 5, 1)
    assert torch.get_num_threads() == 1
    frames = 2 * len(FrameDetectionDataset(tiny_shapes))  # two data sets trained on as one
    assert f"trained 1 steps (0->1) on {frames} frames" in capsys.readouterr().err


def test_train_tracker_on_a_frozen_detector(tiny_shapes, tiny_detector, tmp_path, capsys):
    from tubelets.models.checkpoints import read_checkpoint

    out = str(tmp_path / "tracker.pt")
    assert main(["train", "tracker", tiny_shapes, out, "--steps", "1", "--no-progress", "--device", "cpu",
                 "--threads", "1", "--set", f"detector.checkpoint={tiny_detector}", "--set", "detector.num_classes=3",
                 *TINY_DETECTOR, "--set", "train_tracker.batch_size=2", "--set", f"train_tracker.model={TINY_HEADS}",
                 "--set", "train_tracker.source=jpeg"]) == 0
    err = capsys.readouterr().err
    detector_id = read_checkpoint(tiny_detector)["checkpoint_id"]
    assert "trained 1 steps (0->1)" in err and f"against detector {detector_id}" in err
    assert read_checkpoint(out)["config"]["train_tracker"]["steps"] == 1


def test_evaluate_detector_prints_its_numbers_as_json(tiny_shapes, tiny_detector, capsys):
    from tubelets.models.checkpoints import read_checkpoint

    assert main(["evaluate-detector", tiny_shapes, "--checkpoint", tiny_detector, "--set", "detector.num_classes=3",
                 *TINY_DETECTOR, "--set", "detector.device=cpu", "--stride", "8", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["checkpoint"] == tiny_detector
    assert report["checkpoint_id"] == read_checkpoint(tiny_detector)["checkpoint_id"]
    assert report["frames"] > 0 and report["instances"] > 0 and 0.0 <= report["AP"] <= 1.0 and report["seconds"] >= 0
    assert f"on {report['frames']} frames" in captured.err


def test_train_scorer_takes_data_set_and_run_pairs(tmp_path, capsys):
    args = build_parser().parse_args(["train", "scorer", "s.pt", "--run", "d1", "r1", "--run", "d2", "r2"])
    assert (args.out, args.run) == ("s.pt", [["d1", "r1"], ["d2", "r2"]])
    # A folder that is no evaluate run: one line saying what a scorer trains on, exit 2, nothing written.
    assert main(["train", "scorer", str(tmp_path / "s.pt"), "--run", str(tmp_path), str(tmp_path / "run")]) == 2
    assert "not a complete `tubelets evaluate` run" in capsys.readouterr().err
    assert not (tmp_path / "s.pt").exists()
