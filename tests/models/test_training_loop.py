import copy

import pytest
import torch

from tubelets.errors import ConfigError
from tubelets.models.training_loop import learning_rate, make_optimizer, recent_mean, resume

SCHEDULE = {"lr": 0.01, "steps": 100, "warmup_steps": 10, "schedule": "cosine", "min_lr_ratio": 0.1, "milestones": []}


def test_warmup_then_cosine():
    assert learning_rate(0, SCHEDULE) == pytest.approx(1e-4)
    assert learning_rate(5, SCHEDULE) == pytest.approx(0.01 * (0.01 + 0.99 * 0.5))
    assert learning_rate(10, SCHEDULE) == pytest.approx(0.01)
    assert learning_rate(55, SCHEDULE) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    assert learning_rate(100, SCHEDULE) == pytest.approx(0.001)


def test_step_schedule_and_bad_names():
    schedule = {**SCHEDULE, "schedule": "step", "milestones": [0.5, 0.8]}
    assert [learning_rate(s, schedule) for s in (20, 50, 80)] == pytest.approx([0.01, 0.001, 0.0001])
    with pytest.raises(ConfigError, match="schedule"):
        learning_rate(20, {**SCHEDULE, "schedule": "linear"})


def test_optimizers(small_cfg):
    model = torch.nn.Linear(2, 2)
    train_cfg = copy.deepcopy(small_cfg["train_detector"])
    assert isinstance(make_optimizer(model, train_cfg), torch.optim.AdamW)
    assert isinstance(make_optimizer(model, {**train_cfg, "optimizer": "sgd"}), torch.optim.SGD)
    with pytest.raises(ConfigError, match="optimizer"):
        make_optimizer(model, {**train_cfg, "optimizer": "lamb"})


def test_resume_without_a_checkpoint_starts_at_zero_and_refuses_one_beyond_the_steps(tmp_path):
    from tubelets.models.checkpoints import write_checkpoint

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    url = str(tmp_path / "run.pt")
    assert resume(url, optimizer, {"steps": 4}, "train_x", lambda _: pytest.fail("nothing to load")) == 0
    write_checkpoint(url, {"step": 9, "optimizer": None, "checkpoint_id": "x"})
    with pytest.raises(ConfigError, match="beyond train_x.steps 4"):
        resume(url, optimizer, {"steps": 4}, "train_x", lambda u: {"step": 9, "optimizer": None})


def test_recent_mean():
    assert recent_mean([{"loss": 1.0}, {"loss": 3.0}], "loss") == 2.0
    assert recent_mean([{"loss": 1.0}, {"loss": 3.0}], "loss", count=1) == 3.0
    assert recent_mean([], "loss") != recent_mean([], "loss")  # NaN
