"""Loading plain torchvision state dicts (the COCO ``maskrcnn_resnet50_fpn`` layout) into our presets."""

import copy
import io
import re
import uuid

import fsspec
import pytest
import torch

from tubelets.errors import CheckpointError, ConfigError
from tubelets.models.detector import build_detector
from tubelets.config import load_config
from tubelets.models.loading import (
    UNMAPPED_LOGIT, check_devices, load_detector, parse_category_map, upgrade_legacy_keys
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLS = "roi_heads.box_predictor.cls_score"
BOX = "roi_heads.box_predictor.bbox_pred"
MASK = "roi_heads.mask_predictor.mask_fcn_logits"
MASK_HEAD = "roi_heads.mask_head."


def legacy_names(state):
    """Key names as the torchvision COCO file has them (written before torchvision 0.8)."""
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"^rpn\.head\.conv\.0\.0\.", "rpn.head.conv.", key)
        key = re.sub(r"^roi_heads\.mask_head\.(\d+)\.0\.", lambda m: f"{MASK_HEAD}mask_fcn{int(m[1]) + 1}.", key)
        renamed[key] = value
    return renamed


@pytest.fixture(scope="module")
def coco_state():
    """A random 91-class state dict in the r50-fpn layout, with distinct values in every predictor row."""
    torch.manual_seed(0)
    state = build_detector({"preset": "r50-fpn", "num_classes": 91}).state_dict()
    for layer in (CLS, BOX, MASK):
        for kind in ("weight", "bias"):
            tensor = state[f"{layer}.{kind}"]
            state[f"{layer}.{kind}"] = torch.arange(tensor.numel(), dtype=torch.float32).reshape(tensor.shape)
    return state


@pytest.fixture(scope="module")
def coco_url(coco_state):
    url = f"memory://coco-{uuid.uuid4().hex[:8]}/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    buffer = io.BytesIO()
    torch.save(legacy_names(coco_state), buffer)
    with fsspec.open(url, "wb") as handle:
        handle.write(buffer.getvalue())
    yield url
    fsspec.filesystem("memory").rm(url.split("://")[1].rsplit("/", 1)[0], recursive=True)


def r50_cfg(small_cfg, url, **detector):
    cfg = copy.deepcopy(small_cfg)
    cfg["detector"].update(preset="r50-fpn", checkpoint=url, min_size=None, max_size=None, **detector)
    return cfg


def test_legacy_keys_are_upgraded(coco_state):
    old = legacy_names(coco_state)
    assert "rpn.head.conv.weight" in old and "roi_heads.mask_head.mask_fcn4.bias" in old
    assert list(upgrade_legacy_keys(old)) == list(coco_state)


def test_coco_state_dict_loads_with_a_category_map(small_cfg, coco_url, coco_state):
    # COCO 1 (person) -> id 2, COCO 18 (dog) -> id 1; ids 3..6 have no COCO class.
    cfg = r50_cfg(small_cfg, coco_url, category_map={1: 2, 18: 1}, categories=["dog", "person", "c", "d", "e", "f"])
    model, info = load_detector(cfg)
    assert info.source == "torchvision" and info.num_classes == 7 and info.categories[1]["name"] == "person"
    loaded = model.state_dict()
    assert loaded[f"{CLS}.weight"].shape == (7, 1024) and loaded[f"{BOX}.weight"].shape == (28, 1024)
    for target, source in ((0, 0), (2, 1), (1, 18)):
        assert torch.equal(loaded[f"{CLS}.weight"][target], coco_state[f"{CLS}.weight"][source])
        boxes = slice(4 * target, 4 * target + 4), slice(4 * source, 4 * source + 4)
        assert torch.equal(loaded[f"{BOX}.bias"][boxes[0]], coco_state[f"{BOX}.bias"][boxes[1]])
        assert torch.equal(loaded[f"{MASK}.weight"][target], coco_state[f"{MASK}.weight"][source])
    assert torch.all(loaded[f"{CLS}.bias"][3:] == UNMAPPED_LOGIT)
    assert torch.all(loaded[f"{CLS}.weight"][3:] == 0)
    backbone = "backbone.body.layer1.0.conv1.weight"
    assert torch.equal(loaded[backbone], coco_state[backbone])


def test_coco_state_dict_without_map_needs_91_classes(small_cfg, coco_url):
    expect = "has 91 classes (incl. background), detector.num_classes is 7"
    with pytest.raises(CheckpointError, match=re.escape(expect)) as caught:
        load_detector(r50_cfg(small_cfg, coco_url))
    assert coco_url in str(caught.value) and "category_map" in str(caught.value)
    model, info = load_detector(r50_cfg(small_cfg, coco_url, num_classes=91))
    assert info.num_classes == 91 and info.categories[0]["name"] == "class_1"


def test_reference_training_checkpoint_is_its_model_entry(small_cfg, coco_state):
    url = f"memory://ref-{uuid.uuid4().hex[:8]}/model_25.pth"
    buffer = io.BytesIO()
    torch.save({"model": coco_state, "epoch": 25}, buffer)
    fsspec.filesystem("memory").pipe_file(url.split("://")[1], buffer.getvalue())
    _, info = load_detector(r50_cfg(small_cfg, url, num_classes=91))
    assert info.source == "torchvision"


def test_r50_state_dict_does_not_fit_the_small_preset(small_cfg, coco_url):
    cfg = r50_cfg(small_cfg, coco_url, num_classes=91)
    cfg["detector"]["preset"] = "small"
    with pytest.raises(CheckpointError, match="missing keys .*unexpected keys .*in all"):
        load_detector(cfg)


@pytest.mark.parametrize(
    "category_map, message",
    [({0: 1}, "out of range"), ({1: 7}, "out of range"), ({1: 1, 2: 1}, "one checkpoint class to each")],
)
def test_bad_category_maps(category_map, message):
    with pytest.raises(ConfigError, match=message):
        parse_category_map(category_map, 7)


def test_category_map_beyond_the_checkpoint_classes(small_cfg, coco_url):
    with pytest.raises(CheckpointError, match=r"has 91 classes; detector.category_map uses \[95\]"):
        load_detector(r50_cfg(small_cfg, coco_url, category_map={95: 1}))


def test_yaml_string_keys_are_accepted():
    assert parse_category_map({"1": "2"}, 7) == {1: 2}


@pytest.fixture
def gpus(monkeypatch):
    """``gpus(n)``: torch sees ``n`` CUDA devices (none when 0), whatever this machine has."""
    def see(count):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)

    return see


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["detector.device=cuda"], "detector.device"),
        (["tracker.ipdt.device=cuda:0"], "tracker.ipdt.device"),
        (["tracker.name=pixel", "tracker.pixel.device=cuda"], "tracker.pixel.device"),
        (["run.task=vos", "vos.device=cuda:1"], "vos.device"),
        (["run.task=point", "vos.device=cuda"], "vos.device"),
    ],
)
def test_a_cuda_device_on_a_machine_without_one_is_refused(gpus, overrides, key):
    gpus(0)
    with pytest.raises(ConfigError) as raised:
        check_devices(load_config(None, overrides))
    message = str(raised.value)
    assert message.startswith(f"config {key} is 'cuda") and "no CUDA GPU" in message
    assert f"set {key} to auto" in message and "or cpu" in message and "\n" not in message


@pytest.mark.parametrize(
    "overrides",
    [
        [],  # auto everywhere
        ["detector.device=cpu", "tracker.ipdt.device=cpu", "vos.device=cpu"],
        ["tracker.pixel.device=cuda"],  # the run's tracker is ipdt
        ["tracker.name=iou", "tracker.ipdt.device=cuda"],  # iou has no device
        ["vos.device=cuda"],  # a vis run does not use vos
        ["run.task=vos", "detector.device=cuda", "tracker.ipdt.device=cuda"],  # a vos run uses vos.device only
    ],
)
def test_devices_the_run_does_not_use_or_that_exist_pass(gpus, overrides):
    gpus(0)
    check_devices(load_config(None, overrides))


def test_a_cuda_index_beyond_the_device_count_is_refused(gpus):
    gpus(2)
    check_devices(load_config(None, ["detector.device=cuda:1", "tracker.ipdt.device=cuda"]))
    with pytest.raises(ConfigError, match=r"^config detector.device is 'cuda:2', but torch sees 2 CUDA GPU\(s\) here"):
        check_devices(load_config(None, ["detector.device=cuda:2"]))
