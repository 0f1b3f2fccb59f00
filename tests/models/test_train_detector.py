import pytest
import torch

from tubelets.errors import ConfigError
from tubelets.models import train_detector as training
from tubelets.models.checkpoints import read_checkpoint
from tubelets.models.train_detector import train_detector

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_few_steps_write_a_checkpoint(tiny_shapes_url, small_cfg, tmp_path):
    out = str(tmp_path / "run" / "detector.pt")
    result = train_detector(tiny_shapes_url, out, small_cfg, device="cpu", progress=False)
    assert (result.start_step, result.steps, result.device) == (0, 4, "cpu")
    assert result.loss > 0 and result.frames > 0
    checkpoint = read_checkpoint(out)
    assert checkpoint["step"] == 4 and checkpoint["optimizer"] is not None
    assert checkpoint["checkpoint_id"] == result.checkpoint_id
    assert [c["name"] for c in checkpoint["categories"]][:2] == ["disc", "box"]
    assert checkpoint["config"]["train_detector"]["steps"] == 4


def test_interrupted_run_resumes_to_the_same_weights(tiny_shapes_url, small_cfg, tmp_path, monkeypatch):
    straight = str(tmp_path / "straight.pt")
    train_detector(tiny_shapes_url, straight, small_cfg, device="cpu", progress=False)

    interrupted = str(tmp_path / "interrupted.pt")
    real_step = training.train_step

    def crash_at_step_3(*args):
        if args[4] == 3:  # the step
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(training, "train_step", crash_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train_detector(tiny_shapes_url, interrupted, small_cfg, device="cpu", progress=False)
    assert read_checkpoint(interrupted)["step"] == 2  # the periodic checkpoint
    monkeypatch.setattr(training, "train_step", real_step)

    result = train_detector(tiny_shapes_url, interrupted, small_cfg, resume=True, device="cpu", progress=False)
    assert result.start_step == 2
    expected, resumed = read_checkpoint(straight)["model"], read_checkpoint(interrupted)["model"]
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key


def test_resume_without_a_checkpoint_starts_at_zero(tiny_shapes_url, small_cfg, tmp_path):
    small_cfg["train_detector"].update(steps=1, release=True)
    out = str(tmp_path / "fresh.pt")
    result = train_detector(tiny_shapes_url, out, small_cfg, resume=True, device="cpu", progress=False)
    assert result.start_step == 0
    checkpoint = read_checkpoint(out)
    assert checkpoint["optimizer"] is None and checkpoint["model"]["rpn.head.cls_logits.weight"].dtype == torch.half


def test_too_few_classes_for_the_data_set(tiny_shapes_url, small_cfg, tmp_path):
    small_cfg["detector"]["num_classes"] = 4
    with pytest.raises(ConfigError, match="category ids \\[4, 5, 6\\].*num_classes to at least 7"):
        train_detector(tiny_shapes_url, str(tmp_path / "x.pt"), small_cfg, device="cpu", progress=False)


def test_a_budget_stops_the_run_with_its_final_checkpoint(tiny_shapes_url, small_cfg, tmp_path):
    small_cfg["train_detector"].update(steps=1_000_000, release=True, checkpoint_every=1_000_000)
    out = str(tmp_path / "budget.pt")
    result = train_detector(tiny_shapes_url, out, small_cfg, device="cpu", progress=False, max_seconds=2.0,
                            mixed_precision=True, cache_videos=0)  # mixed precision is off on the CPU
    assert result.stopped_by_budget and 0 < result.steps == len(result.history) < 1_000_000
    assert 2.0 <= result.wall_seconds < 2.0 + 15.0  # no step starts after the budget; the last may end past it
    checkpoint = read_checkpoint(out)
    assert checkpoint["step"] == result.steps and checkpoint["checkpoint_id"] == result.checkpoint_id
    assert checkpoint["optimizer"] is None and checkpoint["model"]["rpn.head.cls_logits.weight"].dtype == torch.half
    # The decay follows the time spent: the last step's rate is near the cosine's floor, not the peak.
    lrs = [step["lr"] for step in result.history]
    floor = small_cfg["train_detector"]["lr"] * small_cfg["train_detector"]["min_lr_ratio"]
    assert floor * 0.999 <= lrs[-1] < 0.5 * small_cfg["train_detector"]["lr"]


def test_a_budget_follows_the_time_spent_in_the_schedule():
    from tubelets.models.training_loop import learning_rate

    schedule = {"lr": 0.01, "steps": 1000, "warmup_steps": 10, "schedule": "cosine", "min_lr_ratio": 0.1,
                "milestones": [0.5]}
    assert learning_rate(5, schedule, spent_share=0.9) == learning_rate(5, schedule)  # the warm-up is in steps
    assert learning_rate(20, schedule, spent_share=0.5) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    assert learning_rate(20, schedule, spent_share=1.7) == pytest.approx(0.001)  # past the budget: the floor
    assert learning_rate(900, schedule, spent_share=0.0) == learning_rate(900, schedule)  # steps further along
    step_schedule = {**schedule, "schedule": "step"}
    assert learning_rate(20, step_schedule, spent_share=0.6) == pytest.approx(0.001)


def test_a_budgeted_run_does_not_resume(tiny_shapes_url, small_cfg, tmp_path):
    with pytest.raises(ConfigError, match="cannot resume"):
        train_detector(tiny_shapes_url, str(tmp_path / "x.pt"), small_cfg, resume=True, device="cpu",
                       progress=False, max_seconds=10)
