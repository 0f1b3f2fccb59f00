"""The checkpoint shipped in ``models/checkpoints/`` loads with the default config and finds shapes."""

import numpy as np
import pytest

from tubelets import masks as rle
from tubelets.config import load_config
from tubelets.models.checkpoints import builtin_checkpoints, read_checkpoint
from tubelets.models.inference import detect
from tubelets.models.loading import load_detector
from tubelets.synth import CATEGORIES, generate_video, video_rng

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(
        "detector-small" not in builtin_checkpoints(),
        reason="models/checkpoints/detector-small.pt is not there yet (see models/checkpoints/detector-small.md)",
    ),
]


@pytest.fixture(scope="module")
def shipped():
    cfg = load_config(overrides=["detector.device=cpu"])
    assert cfg["detector"]["checkpoint"] == "builtin:detector-small"
    return load_detector(cfg)


def test_shipped_checkpoint_is_small_and_described(shipped):
    _, info = shipped
    assert info.source == "tubelets" and info.preset == "small" and info.num_classes == 7
    assert [c["name"] for c in info.categories] == [c["name"] for c in CATEGORIES]
    checkpoint = read_checkpoint("builtin:detector-small")
    assert checkpoint["optimizer"] is None
    assert checkpoint["checkpoint_id"] == info.checkpoint_id


def test_shipped_checkpoint_finds_the_shapes_of_an_unseen_video(shipped):
    model, _ = shipped
    video = generate_video(video_rng(4321, 0))  # a seed neither the training nor the evaluation set used
    frames = list(range(0, video.length, max(1, video.length // 4)))[:4]
    found, total = 0, 0
    for t, detections in zip(frames, detect(model, [video.frames[t] for t in frames])):
        keep = detections["scores"] >= 0.5
        predicted = [rle.encode(m >= 0.5) for m in detections["masks"][keep]]
        for instance in video.instances:
            if instance.masks[t] is None:
                continue
            total += 1
            ious = rle.iou_matrix(predicted, [rle.encode(instance.masks[t])])[:, 0]
            labels = detections["labels"][keep]
            found += bool(np.any((ious >= 0.5) & (labels == instance.category_id)))
    assert total > 0
    assert found / total >= 0.6, f"found {found} of {total} instances"
