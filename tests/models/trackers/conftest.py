"""Proposals of synthetic squares moving on a 64x48 canvas, for the tracker tests."""

import numpy as np
import pytest

from tubelets import masks
from tubelets.records import FrameDetections, VideoMeta, VideoProposals

HEIGHT, WIDTH, SIZE = 48, 64, 10


def square_detections(frame, objects):
    """``objects``: (x, y, label, score) of SIZE x SIZE squares; a label < 0 gives an empty mask."""
    boxes, rles = [], []
    for x, y, label, _ in objects:
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        if label >= 0:
            mask[y : y + SIZE, x : x + SIZE] = 1
        boxes.append([x, y, x + SIZE, y + SIZE])
        rles.append(masks.encode(mask))
    return FrameDetections(
        frame,
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray([o[3] for o in objects], np.float32),
        np.asarray([abs(o[2]) for o in objects], np.int64),
        rles,
    )


@pytest.fixture
def make_video():
    """``make_video(frames)``: VideoProposals from one list of (x, y, label, score) per frame."""

    def make(frames, key="clip.mp4"):
        meta = VideoMeta(key, WIDTH, HEIGHT, len(frames))
        return VideoProposals(meta, [square_detections(i, objects) for i, objects in enumerate(frames)])

    return make
