import pytest
import torch

from tubelets.models.vos_redetect import snap_to_proposals

H, W = 48, 64


def box_probs(*boxes, value=0.9):
    """``float [N, H, W]``: ``value`` inside each ``(x1, y1, x2, y2)`` box, 0.05 elsewhere."""
    probs = torch.full((len(boxes), H, W), 0.05)
    for row, (x1, y1, x2, y2) in enumerate(boxes):
        probs[row, y1:y2, x1:x2] = value
    return probs


def test_an_object_takes_the_proposal_that_overlaps_it_most():
    objects = box_probs((10, 10, 30, 30), (40, 10, 60, 30))
    proposals = box_probs((41, 11, 61, 31), (11, 10, 31, 30), value=0.99)
    snapped = snap_to_proposals(objects, proposals, threshold=0.5, snap_iou=0.5)
    assert torch.equal(snapped[0], proposals[1]) and torch.equal(snapped[1], proposals[0])


def test_a_weak_overlap_or_no_proposal_keeps_the_propagated_mask():
    objects = box_probs((10, 10, 30, 30))
    shifted = box_probs((22, 22, 42, 42))  # IoU 64 / 736
    assert torch.equal(snap_to_proposals(objects, shifted, 0.5, 0.5), objects)
    assert torch.equal(snap_to_proposals(objects, torch.zeros((0, H, W)), 0.5, 0.5), objects)
    assert snap_to_proposals(torch.zeros((0, H, W)), shifted, 0.5, 0.5).shape == (0, H, W)


def test_one_proposal_goes_to_one_object_only():
    objects = box_probs((10, 10, 30, 30), (11, 10, 31, 30))
    proposals = box_probs((10, 10, 30, 30), value=0.99)
    snapped = snap_to_proposals(objects, proposals, 0.5, 0.5)
    assert sum(torch.equal(snapped[row], proposals[0]) for row in range(2)) == 1


def test_the_inputs_are_not_changed():
    objects = box_probs((10, 10, 30, 30))
    before = objects.clone()
    snap_to_proposals(objects, box_probs((10, 10, 30, 30), value=0.99), 0.5, 0.5)
    assert torch.equal(objects, before)


@pytest.mark.parametrize("bad", [1.5, -0.1, True, "x"])
def test_snap_iou_is_checked(bad):
    from tubelets.config import defaults
    from tubelets.errors import ConfigError
    from tubelets.models.vos import VosSegmenter

    settings = {**defaults("vos"), "checkpoint": None, "snap_iou": bad}
    del settings["prompts"]  # the pipeline's, not the segmenter's
    with pytest.raises(ConfigError, match="snap_iou"):
        VosSegmenter(**settings)
