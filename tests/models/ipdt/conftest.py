"""Fixtures of the IPDT tests: a tiny untrained detector and head set, and tiny square videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tubelets import masks
from tubelets.models.detector import build_detector
from tubelets.models.ipdt.model import IPDT, IPDTConfig
from tubelets.records import FrameDetections, VideoMeta, VideoProposals

HEIGHT, WIDTH = 48, 64
TINY_DETECTOR = {"preset": "small", "num_classes": 3, "min_size": HEIGHT, "max_size": WIDTH, "checkpoint": None}
TINY_HEADS = IPDTConfig(embedding_dim=8, siamese_channels=16, segmentation_channels=8, local_radius=2,
                        reference_pixels=16)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread: the tests run two at a time on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_detector():
    torch.manual_seed(0)
    return build_detector(TINY_DETECTOR).eval()


@pytest.fixture
def tiny_model():
    torch.manual_seed(1)
    return IPDT(TINY_HEADS).eval()


def square_frames(length: int, squares: list[tuple[int, int, int]], seed: int = 0) -> np.ndarray:
    """``uint8 [T, H, W, 3]``: noise with bright 12-pixel squares; ``squares`` is ``(x0, y0, dx)`` per square."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, (length, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for t in range(length):
        for x0, y0, dx in squares:
            x = x0 + dx * t
            frames[t, y0 : y0 + 12, x : x + 12] = (230, 200, 40)
    return frames


def square_mask(x: int, y: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[y : y + 12, x : x + 12] = 1
    return mask


def detections(frame: int, placed: list[tuple[int, int, int, float]]) -> FrameDetections:
    """``placed``: ``(x, y, label, score)`` of 12-pixel squares."""
    rles = [masks.encode(square_mask(x, y)) for x, y, _, _ in placed]
    return FrameDetections(
        frame,
        np.asarray([[x, y, x + 12, y + 12] for x, y, _, _ in placed], np.float32).reshape(-1, 4),
        np.asarray([p[3] for p in placed], np.float32),
        np.asarray([p[2] for p in placed], np.int64),
        rles,
    )


def video(frames_placed: list[list[tuple[int, int, int, float]]], key: str = "squares") -> VideoProposals:
    meta = VideoMeta(key, WIDTH, HEIGHT, len(frames_placed))
    return VideoProposals(meta, [detections(t, placed) for t, placed in enumerate(frames_placed)])


@pytest.fixture
def tiny_detector_section() -> dict:
    """The ``detector:`` settings of the tiny detector (no checkpoint)."""
    return dict(TINY_DETECTOR)


@pytest.fixture
def tiny_heads() -> IPDTConfig:
    return TINY_HEADS
