import numpy as np
import pytest
import torch

from tubelets.models.detector import build_detector
from tubelets.models.inference import (
    autocast_dtype, detect, detect_each, detect_with_features, fpn_features, frames_to_tensors,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def model():
    torch.manual_seed(0)
    # A score threshold of 0 so that an untrained model still returns detections.
    cfg = {"preset": "small", "num_classes": 7, "min_size": 48, "max_size": 64, "score_threshold": 0.0}
    return build_detector(cfg).eval()


def test_frames_to_tensors_scales_and_transposes():
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    frame[1, 2] = [255, 0, 51]
    (tensor,) = frames_to_tensors([frame])
    assert tensor.shape == (3, 48, 64) and tensor.dtype == torch.float32
    assert tensor[:, 1, 2].tolist() == pytest.approx([1.0, 0.0, 0.2])


def test_frames_to_tensors_rejects_grey_frames():
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        frames_to_tensors([np.zeros((48, 64), dtype=np.uint8)])


def test_fpn_features_strides(model):
    features, sizes = fpn_features(model, [torch.rand(3, 48, 64)])
    assert list(features) == ["0", "1", "2", "3", "pool"]
    assert sizes == [(48, 64)]
    # The batch is padded to a multiple of 32: 64x64, so P2 (stride 4) is 16x16.
    assert features["0"].shape == (1, 64, 16, 16)
    assert features["3"].shape == (1, 64, 2, 2)


def test_detect_with_features_matches_a_plain_forward(model):
    images = [torch.rand(3, 48, 64)]
    torch.manual_seed(1)
    with torch.no_grad():
        (plain,) = model(images)
    (ours,), features, _ = detect_with_features(model, images)
    assert len(plain["boxes"]) > 0
    for key in ("boxes", "labels", "scores", "masks"):
        assert torch.equal(plain[key], ours[key])
    assert features["0"].shape[1] == 64


def test_detect_with_features_needs_eval_mode(model):
    with pytest.raises(RuntimeError, match="eval"):
        detect_with_features(model.train(), [torch.rand(3, 48, 64)])


def test_detect_returns_numpy_per_frame(model):
    frames = [np.full((48, 64, 3), 128, dtype=np.uint8), np.zeros((48, 64, 3), dtype=np.uint8)]
    results = detect(model, frames)
    assert len(results) == 2
    for result in results:
        n = len(result["scores"])
        assert result["boxes"].shape == (n, 4) and result["masks"].shape == (n, 48, 64)
        assert result["masks"].dtype == np.float32 and np.all(np.diff(result["scores"]) <= 0)


def test_detect_on_no_frames(model):
    assert detect(model, []) == []


def test_auto_precision_is_bfloat16_on_a_gpu_and_float32_on_the_cpu():
    assert autocast_dtype("auto", "cpu") is None and autocast_dtype("auto", torch.device("cuda:1")) is torch.bfloat16
    assert autocast_dtype("float32", "cuda") is None
    assert [autocast_dtype(p, "cpu") for p in ("bfloat16", "float16")] == [torch.bfloat16, torch.float16]
    with pytest.raises(ValueError, match="precision must be auto or one of float32, bfloat16, float16, got 'fp8'"):
        autocast_dtype("fp8", "cpu")


@pytest.mark.parametrize("precision, dtype", [("auto", torch.float32), ("float32", torch.float32),
                                              ("bfloat16", torch.bfloat16)])
def test_the_backbone_runs_at_the_precision_and_hands_on_float32(model, precision, dtype):
    seen = []
    hook = model.backbone.register_forward_hook(lambda _module, _inputs, output: seen.append(output["0"].dtype))
    try:
        features, _ = fpn_features(model, [torch.rand(3, 48, 64)], precision)
    finally:
        hook.remove()
    assert seen == [dtype] and features["0"].dtype == torch.float32  # auto: float32 on the CPU


def test_a_bfloat16_backbone_leaves_the_heads_in_float32_and_the_detections_close(model):
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    (exact,), (low,) = detect_each(model, [frame]), detect_each(model, [frame], "bfloat16")
    assert all(low[key].dtype == exact[key].dtype for key in exact)
    assert len(low["scores"]) > 0 and not torch.equal(low["scores"], exact["scores"])
    (same,) = detect(model, [frame], "bfloat16")
    assert np.array_equal(same["scores"], low["scores"].numpy())  # one frame: the batched pass is the same pass


