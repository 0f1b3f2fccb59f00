import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn

from tubelets.errors import ConfigError
from tubelets.models.detector import build_detector, known_presets

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_detector(**extra):
    torch.manual_seed(0)
    return build_detector({"preset": "small", "num_classes": 7, "min_size": 48, "max_size": 64, **extra})


def test_known_presets():
    assert known_presets() == ["r50-fpn", "small"]


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown detector preset 'tiny'.*r50-fpn, small"):
        build_detector({"preset": "tiny", "num_classes": 7})


@pytest.mark.parametrize("num_classes", [None, 0, 1])
def test_num_classes_must_count_background_and_a_class(num_classes):
    with pytest.raises(ConfigError, match="num_classes"):
        build_detector({"preset": "small", "num_classes": num_classes})


def test_small_eval_forward_on_64x48():
    model = small_detector().eval()
    with torch.no_grad():
        (out,) = model([torch.rand(3, 48, 64)])
    n = len(out["boxes"])
    assert out["boxes"].shape == (n, 4) and out["labels"].shape == (n,) and out["scores"].shape == (n,)
    assert out["masks"].shape == (n, 1, 48, 64)
    assert n == 0 or (out["labels"].min() >= 1 and out["labels"].max() <= 6)


def test_small_train_forward_with_and_without_instances():
    model = small_detector().train()
    masks = torch.zeros(1, 48, 64, dtype=torch.uint8)
    masks[0, 10:30, 20:40] = 1
    targets = [
        {"boxes": torch.tensor([[20.0, 10.0, 40.0, 30.0]]), "labels": torch.tensor([3]), "masks": masks},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "masks": masks[:0]},
    ]
    losses = model([torch.rand(3, 48, 64), torch.rand(3, 48, 64)], targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


def test_small_preset_is_small():
    parameters = sum(p.numel() for p in small_detector().parameters())
    assert 1_000_000 < parameters < 4_000_000


def test_config_overrides_reach_the_model():
    model = small_detector(score_threshold=0.3, nms_threshold=0.4, detections_per_frame=9)
    assert model.roi_heads.score_thresh == 0.3
    assert model.roi_heads.nms_thresh == 0.4
    assert model.roi_heads.detections_per_img == 9
    assert model.transform.min_size == (48,) and model.transform.max_size == 64


def test_r50_fpn_has_torchvision_maskrcnn_resnet50_fpn_layout():
    ours = build_detector({"preset": "r50-fpn", "num_classes": 91}).state_dict()
    reference = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91).state_dict()
    # torchvision builds trainable BatchNorm without trained weights and frozen BatchNorm with them;
    # ours is the frozen layout, which has no num_batches_tracked buffers.
    reference = {k: v for k, v in reference.items() if not k.endswith("num_batches_tracked")}
    assert list(ours) == list(reference)
    assert all(ours[k].shape == reference[k].shape for k in ours)
