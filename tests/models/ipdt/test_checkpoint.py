"""Tracker checkpoints: round trip, and one clear CheckpointError per way a file can be wrong."""

import pytest
import torch

from tubelets.errors import CheckpointError
from tubelets.models.checkpoints import make_checkpoint, write_checkpoint
from tubelets.models.detector import build_detector
from tubelets.models.ipdt.checkpoint import load_tracking_models, make_tracker_checkpoint
from tubelets.models.loading import load_detector

CATEGORIES = [{"id": 1, "name": "c1"}, {"id": 2, "name": "c2"}]


def save_detector(url, section, seed):
    torch.manual_seed(seed)
    write_checkpoint(url, make_checkpoint(build_detector(section), preset="small", categories=CATEGORIES, config={}))
    return url


@pytest.fixture
def saved(tmp_path, tiny_detector_section, tiny_model):
    """``(tracker url, detector section)``: the tiny heads saved against a saved tiny detector."""
    section = {**tiny_detector_section, "checkpoint": save_detector(str(tmp_path / "det.pt"), tiny_detector_section, 0)}
    _, info = load_detector({"detector": section})
    url = str(tmp_path / "tracker.pt")
    write_checkpoint(url, make_tracker_checkpoint(tiny_model, detector=info, detector_section=section, config={}))
    return url, section


def test_round_trip_gives_the_same_heads_and_the_recorded_detector(saved, tiny_model):
    url, _ = saved
    detector, model, info = load_tracking_models(url, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), tiny_model.state_dict().values()))
    assert not any(p.requires_grad for p in detector.parameters())
    assert info.step == 0 and info.url == url


def test_another_detector_is_refused_naming_both_ids(saved, tmp_path, tiny_detector_section):
    url, section = saved
    other = save_detector(str(tmp_path / "other.pt"), tiny_detector_section, seed=3)
    with pytest.raises(CheckpointError) as error:
        load_tracking_models(url, detector_checkpoint=other, device="cpu")
    _, recorded = load_detector({"detector": section})
    _, loaded = load_detector({"detector": {**section, "checkpoint": other}})
    assert recorded.checkpoint_id in str(error.value) and loaded.checkpoint_id in str(error.value)


def test_missing_corrupt_and_foreign_files_fail_naming_the_file(tmp_path, saved):
    with pytest.raises(CheckpointError, match="absent.pt"):
        load_tracking_models(str(tmp_path / "absent.pt"))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        load_tracking_models(str(corrupt))
    _, section = saved
    with pytest.raises(CheckpointError, match="not a tubelets tracker checkpoint"):
        load_tracking_models(section["checkpoint"])  # a detector checkpoint


def test_tampered_weights_fail(saved):
    url, _ = saved
    checkpoint = torch.load(url, weights_only=True)
    name = next(iter(checkpoint["model"]))
    checkpoint["model"][name] = checkpoint["model"][name] + 1
    write_checkpoint(url, checkpoint)
    with pytest.raises(CheckpointError, match="do not match checkpoint_id"):
        load_tracking_models(url)
