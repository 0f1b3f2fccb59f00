"""models/scripts/gpu_train_detector.py on the CPU: tiny data, a few seconds of training, the files it writes."""

import importlib.util
import json
import pathlib
import sys

import pytest
import torch

from tubelets.config import load_config
from tubelets.models.checkpoints import read_checkpoint
from tubelets.models.loading import load_detector

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "models" / "scripts" / "gpu_train_detector.py"
BUDGET = 5.0
TINY_RUN = ["--budget-seconds", str(BUDGET), "--data-workers", "2", "--train-videos", "2", "--shard-videos", "1",
            "--eval-videos", "1", "--frame-size", "64x48", "--batch-size", "2", "--warmup-steps", "2",
            "--loader-workers", "0", "--threads", "1", "--device", "cpu",
            "--set", "detector.min_size=48", "--set", "detector.max_size=64"]


@pytest.fixture(scope="module")
def script():
    """The script as a module; registered by name, since the forked generating processes look it up there."""
    spec = importlib.util.spec_from_file_location("gpu_train_detector", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)
    del sys.modules[spec.name]


def test_a_tiny_run_on_the_cpu_writes_a_checkpoint_its_log_and_a_summary(script, tmp_path):
    out = tmp_path / "out"
    log = script.main([str(out), "--work", str(tmp_path / "data"), *TINY_RUN])

    assert sorted(path.name for path in out.iterdir()) == ["detector.pt", "log.json", "summary.md"]
    assert json.loads((out / "log.json").read_text()) == log
    assert set(log["phases"]) == {"generate_eval", "evaluate_before", "generate", "train", "evaluate_after", "total"}
    assert log["phases"]["total"] < 120 and log["torch"] == torch.__version__ and log["device"].startswith("cpu")
    # The data: one default and one hard training seed, the held-out sets on seed 1234.
    assert [(s["seed"], s["hard"]) for s in log["data"]["train"]] == [(5000, False), (7000, True)]
    assert [(s["seed"], s["hard"]) for s in log["data"]["eval"]] == [(1234, False), (1234, True)]
    assert all(s["frames"] > 0 for s in log["data"]["train"] + log["data"]["eval"])
    # Training stopped at its budget: no step started after it, the last ended soon after.
    training = log["training"]
    assert training["stopped_by_budget"] and training["granted_seconds"] == BUDGET and training["steps"] > 0
    assert BUDGET <= log["phases"]["train"] < BUDGET + 15  # the last step may end past it (slower on a busy CI)
    assert training["loss_curve"][-1][0] == training["steps"] and training["precision"] == "float32 (CPU)"
    # AP of the --init checkpoint (the shipped one) and of the trained one, on both held-out sets.
    shipped = read_checkpoint("builtin:detector-small")["checkpoint_id"]
    for name in ("eval-default", "eval-hard"):
        before, after = log["AP"][name]["before"], log["AP"][name]["after"]
        assert before["checkpoint_id"] == shipped and after["checkpoint_id"] == log["checkpoint"]["checkpoint_id"]
        assert all(0.0 <= stats[key] <= 1.0 for stats in (before, after) for key in ("AP", "AP50"))
    # The checkpoint is a released one the project's loader reads.
    checkpoint = read_checkpoint(str(out / "detector.pt"))
    assert checkpoint["optimizer"] is None and checkpoint["step"] == training["steps"]
    assert all(t.dtype == torch.half for t in checkpoint["model"].values() if t.is_floating_point())
    cfg = load_config("detector_small", [f"detector.checkpoint={out / 'detector.pt'}", "detector.device=cpu"])
    model, info = load_detector(cfg)
    assert info.checkpoint_id == log["checkpoint"]["checkpoint_id"] and not model.training
    summary = (out / "summary.md").read_text()
    assert log["checkpoint"]["checkpoint_id"] in summary and "seed 5000" in summary and "eval-hard" in summary


def test_the_default_plan_mixes_difficulties_sizes_and_seeds(script, tmp_path):
    eval_shards, train_shards = script.plan_shards(script.parse_args([str(tmp_path)]))
    assert [(s.seed, s.hard, s.videos, s.width) for s in eval_shards] == [(1234, False, 20, 256), (1234, True, 20, 256)]
    assert sum(s.videos for s in train_shards) == 6000 and len(train_shards) == 120
    hard = [s for s in train_shards if s.hard]
    assert len(hard) == 48 and [s.seed for s in hard] == list(range(7000, 7048))
    assert [s.seed for s in train_shards if not s.hard] == list(range(5000, 5072))
    assert {(s.width, s.height) for s in train_shards} == {(256, 192), (320, 240), (192, 144)}
    assert {(s.hard, s.width) for s in train_shards} == {(h, w) for h in (False, True) for w in (256, 320, 192)}
    assert len({s.name for s in train_shards}) == 120


def test_training_time_is_cut_to_end_by_the_deadline(script):
    assert script.training_seconds(420, now=100, deadline=600, reserve=30) == 420  # time to spare
    assert script.training_seconds(420, now=200, deadline=600, reserve=30) == 370  # slow data generation
    assert script.training_seconds(420, now=590, deadline=600, reserve=30) == 0  # nothing left: no step
