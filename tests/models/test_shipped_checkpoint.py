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


def matched_instances(model, video, frames) -> tuple[int, int]:
    """(found, total) over the clearly visible instances (>= 400 pixels) of ``frames`` of ``video``.

    Found: some detection has the right category and mask IoU >= 0.5.
    """
    found = total = 0
    for t, detections in zip(frames, detect(model, [video.frames[t] for t in frames])):
        predicted = [rle.encode(mask >= 0.5) for mask in detections["masks"]]
        for instance in video.instances:
            if instance.masks[t] is None or instance.masks[t].sum() < 400:
                continue
            total += 1
            ious = rle.iou_matrix(predicted, [rle.encode(instance.masks[t])])[:, 0]
            found += bool(np.any((ious >= 0.5) & (detections["labels"] == instance.category_id)))
    return found, total


def test_shipped_checkpoint_finds_the_shapes_of_unseen_videos(shipped):
    model, _ = shipped
    found = total = 0
    for seed in range(4321, 4329):  # seeds neither the training (1) nor the evaluation (1234) set used
        video = generate_video(video_rng(seed, 0))
        counts = matched_instances(model, video, list(range(0, video.length, 6)))
        found, total = found + counts[0], total + counts[1]
    assert total >= 30
    # Measured when the checkpoint was made: 29 of 40 (72%).
    assert found / total >= 0.6, f"found {found} of {total} instances"
