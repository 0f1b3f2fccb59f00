"""Output shapes of every IPDT head, on tiny random inputs, and the matching maps against brute force."""

import pytest
import torch

from tubelets.models.ipdt import geometry
from tubelets.models.ipdt.model import IPDT, IPDTConfig
from tubelets.models.ipdt.pixel import (
    DynamicSegmentationHead,
    PixelEmbedding,
    feelvos_distance,
    global_matching,
    local_distances,
    local_matching,
    reference_vectors,
)
from tubelets.models.ipdt.siamese import Correlator, Discriminator, all_proposals, best_proposals, depthwise_correlation

CONFIG = IPDTConfig(feature_channels=8, embedding_dim=4, siamese_channels=8, segmentation_channels=8,
                    local_radius=1, reference_pixels=5)


def test_discriminator_and_correlator_shapes():
    torch.manual_seed(0)
    template, search = torch.randn(3, 8, 7, 7), torch.randn(3, 8, 15, 15)
    assert Discriminator(8, 8, anchors=3)(template, search).shape == (3, 3, 9, 9)
    assert Correlator(8, 8, anchors=3)(template, search).shape == (3, 12, 9, 9)
    assert Discriminator(8, 8, anchors=3)(template[:0], search[:0]).shape == (0, 3, 9, 9)


def test_depthwise_correlation_matches_a_per_instance_loop():
    torch.manual_seed(0)
    search, template = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 2, 2)
    out = depthwise_correlation(search, template)
    for n in range(2):
        for c in range(3):
            expected = torch.nn.functional.conv2d(search[n : n + 1, c : c + 1], template[n : n + 1, c : c + 1])
            assert torch.allclose(out[n, c], expected[0, 0], atol=1e-5)


def test_embedding_and_segmentation_head_shapes():
    torch.manual_seed(0)
    embedding = PixelEmbedding(8, 4)(torch.randn(2, 8, 6, 5))
    assert embedding.shape == (2, 4, 6, 5)
    head = DynamicSegmentationHead(12, 8)
    terms = head.frame_term(torch.randn(2, 12, 6, 5))
    logits = head(terms, torch.tensor([0, 1, 1]), torch.rand(3, 3, 6, 5))
    assert terms.shape == (2, 8, 6, 5) and logits.shape == (3, 6, 5)


def test_global_matching_is_the_distance_to_the_nearest_reference_pixel():
    torch.manual_seed(0)
    current, reference = torch.randn(1, 4, 3, 5), torch.randn(2, 4, 3, 5)
    masks = torch.zeros(2, 3, 5)
    masks[0, 0, :2] = 1
    masks[1, 2, 4] = 1
    vectors, valid = reference_vectors(reference, masks, limit=5)
    assert vectors.shape == (2, 2, 4) and valid.tolist() == [[True, True], [True, False]]
    shared = global_matching(current, vectors, valid)
    per_instance = global_matching(current.expand(2, -1, -1, -1), vectors, valid)
    pixels = current[0].reshape(4, -1).T
    for n, cells in enumerate([[0, 1], [14]]):
        refs = reference[n].reshape(4, -1).T[cells]
        brute = feelvos_distance(torch.cdist(pixels, refs).pow(2).min(1).values).reshape(3, 5)
        assert torch.allclose(shared[n], brute, atol=1e-4)
        assert torch.allclose(per_instance[n], brute, atol=1e-4)


def test_reference_vectors_subsample_large_masks_and_keep_one_cell_of_a_tiny_one():
    embedding = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    masks = torch.zeros(2, 4, 4)
    masks[0] = 1
    masks[1, 3, 3] = 0.3  # under half a cell: the best-covered cell is still used
    vectors, valid = reference_vectors(embedding, masks, limit=4)
    assert valid.sum(1).tolist() == [4, 1]
    assert vectors[1, 0, 0] == embedding[1, 0, 3, 3]


def test_local_matching_looks_only_at_previous_mask_pixels_within_the_radius():
    torch.manual_seed(0)
    current, previous = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    distances = local_distances(current, previous, radius=1)
    assert distances.shape == (1, 9, 25)
    mask = torch.zeros(1, 5, 5)
    mask[0, 2, 2] = 1
    local = local_matching(distances, torch.tensor([0]), mask, radius=1)
    expected = feelvos_distance((current[0, :, 1, 1] - previous[0, :, 2, 2]).pow(2).sum())
    assert torch.isclose(local[0, 1, 1], expected, atol=1e-5)
    assert local[0, 0, 0] == 1.0  # no previous-mask pixel within one cell: the largest distance
    assert local_matching(distances, torch.zeros(0, dtype=torch.long), mask[:0], radius=1).shape == (0, 5, 5)


def test_local_matching_is_the_minimum_over_every_offset_and_instance():
    """Against a direct reading of the definition, for several instances over two frame pairs."""
    torch.manual_seed(1)
    radius, height, width = 2, 7, 9
    current, previous = torch.randn(2, 4, height, width), torch.randn(2, 4, height, width)
    distances = local_distances(current, previous, radius)
    masks = torch.rand(3, height, width)
    masks[2] = 0.0  # an empty previous mask: 1 everywhere
    pairs = torch.tensor([0, 1, 1])
    local = local_matching(distances, pairs, masks, radius)
    expected = torch.ones(3, height, width)
    for n, pair in enumerate(pairs.tolist()):
        for y in range(height):
            for x in range(width):
                near = [(v, u) for v in range(max(0, y - radius), min(height, y + radius + 1))
                        for u in range(max(0, x - radius), min(width, x + radius + 1)) if masks[n, v, u] > 0.5]
                if near:
                    squared = min(
                        float((current[pair, :, y, x] - previous[pair, :, v, u]).pow(2).sum()) for v, u in near
                    )
                    expected[n, y, x] = feelvos_distance(torch.tensor(squared))
    assert torch.allclose(local, expected, atol=1e-5)


def test_model_steps_batch_every_instance():
    torch.manual_seed(0)
    model = IPDT(CONFIG).eval()
    p2, p3 = torch.randn(1, 8, 12, 16), torch.randn(1, 8, 6, 8)
    encoding = model.encode_frames(p2, p3, 1.0, (48, 64))
    boxes = torch.tensor([[4.0, 4.0, 20.0, 20.0], [30.0, 10.0, 50.0, 40.0]])
    zeros = torch.zeros(2, dtype=torch.long)
    templates = model.templates(encoding, boxes, zeros)
    logits, deltas, anchors = model.track_instances(encoding, zeros, templates, boxes)
    assert templates.shape == (2, 8, 7, 7)
    assert logits.shape == (2, 3, 9, 9) and deltas.shape == (2, 12, 9, 9) and anchors.shape == (2, 3, 9, 9, 4)
    chosen, confidence = best_proposals(logits, deltas, anchors, window_influence=0.2)
    assert chosen.shape == (2, 4) and ((confidence >= 0) & (confidence <= 1)).all()
    every_box, every_prob = all_proposals(logits, deltas, anchors)
    assert every_box.shape == (2, 243, 4) and every_prob.shape == (2, 243)
    unwindowed, top = best_proposals(logits, deltas, anchors, window_influence=0.0)
    assert torch.allclose(top, every_prob.max(1).values)
    assert torch.allclose(unwindowed, every_box[torch.arange(2), every_prob.argmax(1)])
    reference = reference_vectors(encoding.embedding.expand(2, -1, -1, -1), torch.rand(2, 12, 16), 5)
    mask_logits = model.segment_instances(encoding, encoding, zeros, reference, torch.rand(2, 12, 16))
    assert mask_logits.shape == (2, 12, 16)


def test_anchor_grid_centres_the_middle_cell_on_the_last_box():
    box = torch.tensor([[10.0, 20.0, 40.0, 40.0]])
    anchors = geometry.anchor_grid(box, context=1.5, template_size=7, search_size=15, scales=(0.5, 1.0))
    assert anchors.shape == (1, 2, 9, 9, 4)
    assert torch.allclose(anchors[0, 1, 4, 4], box[0])
    cell = 30 * 1.5 / 7  # pixels per cell in x
    assert torch.isclose(anchors[0, 1, 4, 5, 0] - anchors[0, 1, 4, 4, 0], torch.tensor(cell))


@pytest.mark.parametrize("target", [[12.0, 18.0, 44.0, 45.0], [0.0, 0.0, 5.0, 90.0]])
def test_box_deltas_round_trip(target):
    anchors = torch.tensor([[10.0, 20.0, 40.0, 40.0]])
    targets = torch.tensor([target])
    decoded = geometry.decode_boxes(anchors, geometry.encode_boxes(anchors, targets))
    assert torch.allclose(decoded, targets, atol=1e-3)
