"""The feature window: one backbone pass a frame, and with ``proposal_score`` the detections from the same pass."""

import numpy as np
import pytest
import torch

from tubelets.models.inference import frames_to_tensors
from tubelets.models.ipdt.features import FeatureWindow

H, W = 48, 64


def counting_backbone(detector):
    """A list that grows by one on every backbone pass of ``detector`` (and the hook's handle)."""
    calls = []
    return calls, detector.backbone.register_forward_hook(lambda *_: calls.append(1))


def test_proposals_come_from_the_encoding_pass_and_recent_frames_are_kept(models):
    detector, heads = models
    frames = np.random.default_rng(0).integers(0, 255, (6, H, W, 3), dtype=np.uint8)
    with torch.no_grad():
        plain = detector(frames_to_tensors([frames[0]]))[0]
    min_score = float(plain["scores"].median())  # some kept, some not
    calls, hook = counting_backbone(detector)
    try:
        window = FeatureWindow(detector, heads, lambda t: frames[t], capacity=32, proposal_score=min_score,
                               proposal_capacity=2)
        encoding = window[0]
        first = window.proposals(0)
        kept = plain["scores"] >= min_score
        assert 0 < first.shape[0] < len(plain["scores"]) and first.shape[1:] == (H, W) and first.dtype == torch.float32
        assert torch.allclose(first, plain["masks"][kept, 0])  # what a plain detector pass gives
        assert torch.equal(window.proposals(0), first) and len(calls) == 1  # one pass for encoding and proposals
        fresh = FeatureWindow(detector, heads, lambda t: frames[t], capacity=32)
        assert torch.equal(fresh[0].embedding, encoding.embedding)
        calls.clear()
        window.proposals(1), window.proposals(2)  # frame 0's proposals fall out; its encoding stays
        assert window[0] is encoding and len(calls) == 2
        window.proposals(0)
        assert len(calls) == 3
    finally:
        hook.remove()


def test_a_window_without_proposal_score_keeps_no_proposals(models):
    detector, heads = models
    window = FeatureWindow(detector, heads, lambda t: np.zeros((H, W, 3), np.uint8), capacity=32)
    with pytest.raises(ValueError, match="proposal_score"):
        window.proposals(0)


def test_a_lower_precision_backbone_hands_the_heads_float32_levels_close_to_float32_ones(models):
    detector, heads = models
    frames = np.random.default_rng(1).integers(0, 255, (1, H, W, 3), dtype=np.uint8)
    exact = FeatureWindow(detector, heads, lambda t: frames[t], capacity=2)[0]
    same = FeatureWindow(detector, heads, lambda t: frames[t], capacity=2, precision="auto")[0]  # on the CPU
    low = FeatureWindow(detector, heads, lambda t: frames[t], capacity=2, precision="bfloat16")[0]
    assert torch.equal(same.embedding, exact.embedding)
    assert low.embedding.dtype == torch.float32 and not torch.equal(low.embedding, exact.embedding)
    assert torch.allclose(low.embedding, exact.embedding, atol=0.1 * float(exact.embedding.abs().max()))
