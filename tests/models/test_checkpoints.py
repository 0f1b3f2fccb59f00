import io
import uuid

import fsspec
import pytest
import torch

from tubelets.errors import CheckpointError
from tubelets.models.checkpoints import (
    FORMAT,
    builtin_checkpoints,
    make_checkpoint,
    read_checkpoint,
    resolve_url,
    strip_for_release,
    weights_id,
    write_checkpoint,
)
from tubelets.models.detector import build_detector
from tubelets.models.loading import load_detector

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORIES = [{"id": i, "name": f"shape{i}"} for i in range(1, 7)]


@pytest.fixture
def memory_url():
    url = f"memory://checkpoints-{uuid.uuid4().hex[:8]}/detector.pt"
    yield url
    fs = fsspec.filesystem("memory")
    fs.rm(url.split("://")[1].rsplit("/", 1)[0], recursive=True)


def saved(url, cfg, **changes):
    """Save a checkpoint of a fresh model for ``cfg`` (with ``changes`` to the stored dict) at ``url``."""
    torch.manual_seed(0)
    model = build_detector(cfg["detector"])
    checkpoint = make_checkpoint(model, preset=cfg["detector"]["preset"], categories=CATEGORIES, config=cfg, step=5)
    checkpoint.update(changes)
    write_checkpoint(url, checkpoint)
    return model, checkpoint


def write_bytes(url, data):
    with fsspec.open(url, "wb") as handle:
        handle.write(data)


def test_round_trip_through_memory(small_cfg, memory_url):
    model, checkpoint = saved(memory_url, small_cfg)
    small_cfg["detector"]["checkpoint"] = memory_url
    loaded, info = load_detector(small_cfg)
    assert info.url == memory_url and info.source == "tubelets" and info.step == 5
    assert info.checkpoint_id == checkpoint["checkpoint_id"] == weights_id(model.state_dict())
    assert info.categories == CATEGORIES and info.num_classes == 7 and info.preset == "small"
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_read_checkpoint_fields(small_cfg, memory_url):
    saved(memory_url, small_cfg)
    checkpoint = read_checkpoint(memory_url)
    assert checkpoint["format"] == FORMAT
    assert {"model", "preset", "num_classes", "categories", "config", "step", "optimizer", "checkpoint_id"} <= set(
        checkpoint
    )
    assert checkpoint["config"]["detector"]["preset"] == "small"


def test_release_copy_is_half_precision_and_loads(small_cfg, memory_url):
    model, checkpoint = saved(memory_url, small_cfg)
    released = strip_for_release({**checkpoint, "discriminator": {"w": torch.ones(2)}})  # a DANN run's
    assert released["optimizer"] is None and "discriminator" not in released
    assert all(v.dtype == torch.float16 for v in released["model"].values() if v.is_floating_point())
    write_checkpoint(memory_url, released)
    small_cfg["detector"]["checkpoint"] = memory_url
    loaded, info = load_detector(small_cfg)
    assert info.checkpoint_id == released["checkpoint_id"] != checkpoint["checkpoint_id"]
    weight = "roi_heads.box_predictor.cls_score.weight"
    assert loaded.state_dict()[weight].dtype == torch.float32
    torch.testing.assert_close(loaded.state_dict()[weight], model.state_dict()[weight], atol=1e-3, rtol=1e-3)


def test_write_is_atomic_and_leaves_no_temporary(small_cfg, tmp_path):
    url = str(tmp_path / "sub" / "detector.pt")
    saved(url, small_cfg)
    saved(url, small_cfg, step=9)  # overwrite
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["detector.pt"]
    assert read_checkpoint(url)["step"] == 9


def expect_error(cfg, url, *patterns):
    cfg["detector"]["checkpoint"] = url
    with pytest.raises(CheckpointError) as caught:
        load_detector(cfg)
    message = str(caught.value)
    assert url in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def test_missing_file(small_cfg, tmp_path):
    expect_error(small_cfg, str(tmp_path / "nope.pt"), "not found")


def test_garbage_bytes(small_cfg, memory_url):
    write_bytes(memory_url, b"this is not a torch file at all" * 10)
    expect_error(small_cfg, memory_url, "not a readable torch file")


def test_truncated_file(small_cfg, memory_url):
    saved(memory_url, small_cfg)
    with fsspec.open(memory_url, "rb") as handle:
        data = handle.read()
    write_bytes(memory_url, data[: len(data) // 2])
    expect_error(small_cfg, memory_url, "not a readable torch file", "truncated")


def test_not_a_dict(small_cfg, memory_url):
    buffer = io.BytesIO()
    torch.save([torch.zeros(3)], buffer)
    write_bytes(memory_url, buffer.getvalue())
    expect_error(small_cfg, memory_url, "holds a list")


def test_wrong_preset(small_cfg, memory_url):
    saved(memory_url, small_cfg, preset="r50-fpn")
    expect_error(small_cfg, memory_url, "preset 'r50-fpn'", "asks for 'small'")


def test_wrong_class_count(small_cfg, memory_url):
    saved(memory_url, small_cfg)
    small_cfg["detector"]["num_classes"] = 5
    expect_error(small_cfg, memory_url, "has 7 classes", "num_classes is 5")


def test_category_names_differ(small_cfg, memory_url):
    saved(memory_url, small_cfg)
    small_cfg["detector"]["categories"] = ["a", "b", "c", "d", "e", "f"]
    expect_error(small_cfg, memory_url, "shape1", "'a'")


def test_missing_unexpected_and_misshapen_keys(small_cfg, memory_url):
    _, checkpoint = saved(memory_url, small_cfg)
    state = dict(checkpoint["model"])
    del state["backbone.fpn.layer_blocks.0.0.weight"]
    state["extra.weight"] = torch.zeros(2)
    state["rpn.head.cls_logits.bias"] = torch.zeros(5)
    checkpoint.update(model=state, checkpoint_id=weights_id(state))
    write_checkpoint(memory_url, checkpoint)
    message = expect_error(small_cfg, memory_url, "missing keys backbone.fpn.layer_blocks.0.0.weight")
    assert "unexpected keys extra.weight" in message
    assert "rpn.head.cls_logits.bias: checkpoint [5] vs model [3]" in message


def test_tampered_weights_do_not_match_the_id(small_cfg, memory_url):
    _, checkpoint = saved(memory_url, small_cfg)
    checkpoint["model"]["rpn.head.cls_logits.bias"] += 1
    write_checkpoint(memory_url, checkpoint)
    expect_error(small_cfg, memory_url, "do not match checkpoint_id")


def test_unknown_builtin_lists_the_shipped_ones():
    with pytest.raises(CheckpointError, match=r"builtin:nope.*built-in checkpoints are \["):
        resolve_url("builtin:nope")


def test_no_checkpoint_is_an_untrained_model(small_cfg):
    model, info = load_detector(small_cfg)
    assert info.source == "untrained" and info.url is None
    assert [c["id"] for c in info.categories] == list(range(1, 7))


def test_builtin_names_are_files():
    for name in builtin_checkpoints():
        assert resolve_url(f"builtin:{name}").endswith(f"{name}.pt")
