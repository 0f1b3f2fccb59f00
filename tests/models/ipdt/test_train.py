"""A few training steps: they run, checkpoint atomically, resume exactly, and refuse another detector."""

import copy
import dataclasses

import pytest
import torch

from tubelets.errors import CheckpointError
from tubelets.models.checkpoints import make_checkpoint, read_checkpoint, write_checkpoint
from tubelets.models.detector import build_detector
from tubelets.models.ipdt.checkpoint import FORMAT
from tubelets.models.ipdt.train import train_tracker

CATEGORIES = [{"id": 1, "name": "c1"}, {"id": 2, "name": "c2"}]


def save_detector(url: str, section: dict, seed: int) -> str:
    """A tiny untrained detector saved as our checkpoint (training reads it through load_detector)."""
    torch.manual_seed(seed)
    write_checkpoint(url, make_checkpoint(build_detector(section), preset="small", categories=CATEGORIES, config={}))
    return url


@pytest.fixture
def detector_url(tmp_path, tiny_detector_section):
    return save_detector(str(tmp_path / "detector.pt"), tiny_detector_section, seed=0)


@pytest.fixture
def train_cfg(small_cfg, detector_url, tiny_heads):
    cfg = copy.deepcopy(small_cfg)
    cfg["detector"].update(num_classes=3, checkpoint=detector_url)
    heads = dataclasses.asdict(tiny_heads)
    heads["anchor_scales"] = list(heads["anchor_scales"])
    # source jpeg: the tiny data set has no mp4 copies
    cfg["train_tracker"].update(steps=4, batch_size=2, warmup_steps=1, checkpoint_every=2, model=heads, source="jpeg")
    return cfg


def test_steps_run_checkpoint_and_resume_exactly(tiny_shapes_url, train_cfg, tmp_path):
    straight = train_tracker(tiny_shapes_url, str(tmp_path / "straight.pt"), train_cfg, device="cpu", progress=False)
    assert straight.steps == 4 and straight.start_step == 0 and torch.isfinite(torch.tensor(straight.loss))
    saved = read_checkpoint(straight.checkpoint_url)
    assert saved["format"] == FORMAT and saved["step"] == 4 and saved["optimizer"] is not None
    assert saved["detector"]["checkpoint_id"] == straight.detector_checkpoint_id

    half = copy.deepcopy(train_cfg)
    half["train_tracker"]["steps"] = 2
    resumed_url = str(tmp_path / "resumed.pt")
    train_tracker(tiny_shapes_url, resumed_url, half, device="cpu", progress=False)
    assert read_checkpoint(resumed_url)["step"] == 2
    resumed = train_tracker(tiny_shapes_url, resumed_url, train_cfg, resume=True, device="cpu", progress=False)
    assert resumed.start_step == 2
    assert resumed.checkpoint_id == straight.checkpoint_id  # the same weights as the uninterrupted run


def test_release_writes_half_weights_without_optimizer(tiny_shapes_url, train_cfg, tmp_path):
    train_cfg["train_tracker"].update(steps=1, release=True)
    result = train_tracker(tiny_shapes_url, str(tmp_path / "release.pt"), train_cfg, device="cpu", progress=False)
    saved = read_checkpoint(result.checkpoint_url)
    assert saved["optimizer"] is None
    assert all(t.dtype == torch.float16 for t in saved["model"].values() if t.is_floating_point())


def test_resume_against_another_detector_fails_naming_both_ids(tiny_shapes_url, train_cfg, tmp_path,
                                                               tiny_detector_section):
    out = str(tmp_path / "t.pt")
    train_cfg["train_tracker"]["steps"] = 1
    first = train_tracker(tiny_shapes_url, out, train_cfg, device="cpu", progress=False)
    other_url = save_detector(str(tmp_path / "other-detector.pt"), tiny_detector_section, seed=5)
    train_cfg["detector"]["checkpoint"] = other_url
    train_cfg["train_tracker"]["steps"] = 2
    with pytest.raises(CheckpointError) as error:
        train_tracker(tiny_shapes_url, out, train_cfg, resume=True, device="cpu", progress=False)
    other_id = read_checkpoint(other_url)["checkpoint_id"]
    assert first.detector_checkpoint_id in str(error.value) and other_id in str(error.value)
