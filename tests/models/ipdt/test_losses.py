"""Training losses on hand-made inputs: labels, balance, empty cases."""

import torch

from tubelets.models.ipdt import geometry, losses


def _anchors():
    return geometry.anchor_grid(torch.tensor([[20.0, 20.0, 40.0, 40.0]] * 2), 1.5, 7, 15, (0.85, 1.0, 1.18))


def test_anchor_labels_mark_the_target_positive_and_an_absent_instance_all_negative():
    anchors = _anchors()
    targets = torch.tensor([[22.0, 20.0, 42.0, 40.0], [0.0, 0.0, 1.0, 1.0]])
    labels = losses.anchor_labels(anchors, targets, torch.tensor([True, False]))
    assert labels.shape == (2, 3, 9, 9)
    assert labels[0].max() == 1 and labels[0, 1, 4, 4] == 1 and labels[0, :, 0, 0].eq(0).all()
    assert labels[1].eq(0).all()


def test_a_poorly_covered_target_still_gets_its_best_anchor_as_positive():
    anchors = _anchors()
    targets = torch.tensor([[20.0, 20.0, 60.0, 40.0]] * 2)  # twice as wide: IoU with any anchor < 0.6
    labels = losses.anchor_labels(anchors, targets, torch.tensor([True, True]))
    assert labels[0].eq(1).sum() == 1


def test_discriminator_loss_weighs_positives_and_negatives_equally():
    labels = torch.zeros(1, 1, 3, 3)
    labels[0, 0, 1, 1] = 1
    perfect = torch.where(labels == 1, 20.0, -20.0)
    assert losses.discriminator_loss(perfect, labels) < 1e-6
    wrong_positive = perfect.clone()
    wrong_positive[0, 0, 1, 1] = -20.0
    wrong_negative = perfect.clone()
    wrong_negative[0, 0, 0, 0] = 20.0
    # One wrong positive of one weighs as much as all eight negatives wrong; one wrong negative, an eighth.
    assert torch.isclose(losses.discriminator_loss(wrong_positive, labels), torch.tensor(20.0), atol=1e-3)
    assert torch.isclose(losses.discriminator_loss(wrong_negative, labels), torch.tensor(2.5), atol=1e-3)


def test_distractor_anchors_are_the_negatives_on_other_instances():
    anchors = _anchors()
    targets = torch.tensor([[22.0, 20.0, 42.0, 40.0]] * 2)
    labels = losses.anchor_labels(anchors, targets, torch.tensor([True, True]))
    other = [torch.tensor([[4.0, 4.0, 24.0, 24.0]]), torch.zeros((0, 4))]
    hard = losses.distractor_anchors(anchors, other, labels)
    assert hard[0].any() and not hard[1].any()
    assert labels[hard].eq(0).all()  # never a positive or an ignored anchor
    on_other = geometry.pairwise_box_iou(anchors[0], other[0][0]) >= 0.5
    assert torch.equal(hard[0], on_other & labels[0].eq(0))


def test_hard_negatives_add_their_own_mean_to_the_discriminator_loss():
    labels = torch.zeros(1, 1, 3, 3)
    labels[0, 0, 1, 1] = 1
    hard = torch.zeros_like(labels, dtype=torch.bool)
    hard[0, 0, 0, 0] = True
    logits = torch.where(labels == 1, 20.0, -20.0)
    logits[0, 0, 0, 0] = 20.0  # the one hard negative scored as the instance
    # Without the group it is one wrong negative of eight (20 / 8); as the only hard negative it adds 20 more.
    assert torch.isclose(losses.discriminator_loss(logits, labels), torch.tensor(2.5), atol=1e-3)
    assert torch.isclose(losses.discriminator_loss(logits, labels, hard), torch.tensor(22.5), atol=1e-3)
    no_hard = torch.zeros_like(hard)
    assert torch.isclose(losses.discriminator_loss(logits, labels, no_hard), torch.tensor(2.5), atol=1e-3)


def test_box_loss_is_zero_for_exact_deltas_and_without_positives():
    anchors = _anchors()
    targets = torch.tensor([[22.0, 20.0, 42.0, 40.0]] * 2)
    labels = losses.anchor_labels(anchors, targets, torch.tensor([True, True]))
    exact = geometry.encode_boxes(anchors, targets[:, None, None, None, :].expand_as(anchors))
    deltas = exact.permute(0, 1, 4, 2, 3).reshape(2, 12, 9, 9)
    assert losses.box_loss(deltas, anchors, targets, labels) < 1e-6
    assert losses.box_loss(deltas + 1, anchors, targets, torch.zeros_like(labels)) == 0


def test_mask_loss_soft_iou_handles_empty_targets():
    targets = torch.zeros(2, 4, 4)
    targets[0, :2] = 1
    good = torch.where(targets > 0, 20.0, -20.0)
    bce, soft_iou = losses.mask_loss(good, targets)
    assert bce < 1e-6 and soft_iou < 1e-3
    bce, soft_iou = losses.mask_loss(torch.full((2, 4, 4), 20.0), targets)
    assert bce > 5 and 0.3 < soft_iou < 1
