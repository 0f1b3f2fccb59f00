import numpy as np
import pytest
import torch

from tubelets import masks as rle
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.models.detector import build_detector
from tubelets.models.evaluate_detector import STAT_NAMES, coco_mask_ap, evaluate_detector, truth_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORIES = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def square(top, left, size=10, shape=(40, 40)):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[top : top + size, left : left + size] = 1
    return mask


def truth(image_id, mask, category_id, annotation_id):
    encoded = rle.encode(mask)
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "iscrowd": 0,
        "segmentation": rle.to_coco(encoded),
        "area": float(rle.area(encoded)),
        "bbox": rle.bbox(encoded),
    }


def result(image_id, mask, category_id, score):
    segmentation = rle.to_coco(rle.encode(mask))
    return {"image_id": image_id, "category_id": category_id, "score": score, "segmentation": segmentation}


IMAGES = [{"id": 1, "width": 40, "height": 40}, {"id": 2, "width": 40, "height": 40}]
TRUTHS = [truth(1, square(0, 0), 1, 1), truth(2, square(20, 20), 2, 2)]


def test_perfect_detections_score_one():
    results = [result(1, square(0, 0), 1, 0.9), result(2, square(20, 20), 2, 0.8)]
    stats = coco_mask_ap(IMAGES, TRUTHS, results, CATEGORIES)
    assert set(stats) == set(STAT_NAMES) | {"per_category_AP"}
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert stats["per_category_AP"] == pytest.approx({"a": 1.0, "b": 1.0})


def test_wrong_class_and_misplaced_masks_score_zero():
    results = [result(1, square(0, 0), 2, 0.9), result(2, square(0, 0), 2, 0.8)]
    stats = coco_mask_ap(IMAGES, TRUTHS, results, CATEGORIES)
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0


def test_a_poor_overlap_misses_and_halves_the_mean_over_classes():
    # Class 2: the detection is shifted by 5 columns, IoU 50 / 150 = 1/3, a miss even at IoU 0.5.
    results = [result(1, square(0, 0, 10), 1, 0.9), result(2, square(20, 25, 10), 2, 0.9)]
    stats = coco_mask_ap(IMAGES, TRUTHS, results, CATEGORIES)
    assert stats["AP50"] == pytest.approx(0.5) and stats["AP"] == pytest.approx(0.5)
    assert stats["per_category_AP"] == pytest.approx({"a": 1.0, "b": 0.0})


def test_no_detections_score_zero():
    stats = coco_mask_ap(IMAGES, TRUTHS, [], CATEGORIES)
    assert stats["AP"] == 0.0 and stats["per_category_AP"] == {"a": 0.0, "b": 0.0}


def test_truth_records_skip_null_masks(tiny_shapes_url):
    dataset = YouTubeVISDataset(tiny_shapes_url)
    video = dataset.videos[0]
    frame_ids = {t: t + 1 for t in range(video.length)}
    records = truth_records(dataset, video.id, frame_ids, first_id=1)
    present = sum(s is not None for track in dataset.tracks(video.id) for s in track.segmentations)
    assert len(records) == present and [r["id"] for r in records] == list(range(1, present + 1))


def test_evaluate_an_untrained_model_end_to_end(tiny_shapes_url):
    torch.manual_seed(0)
    cfg = {"preset": "small", "num_classes": 7, "min_size": 48, "max_size": 64, "detections_per_frame": 5}
    model = build_detector(cfg).eval()
    stats = evaluate_detector(model, tiny_shapes_url, stride=8)
    dataset = YouTubeVISDataset(tiny_shapes_url)
    assert stats["frames"] == sum(len(range(0, v.length, 8)) for v in dataset.videos)
    assert stats["instances"] > 0
    assert 0.0 <= stats["AP"] < 0.05  # random weights find nothing

