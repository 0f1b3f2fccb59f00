"""Fixtures of the IPDT tests: tiny square videos (the tiny models are in ``tests/models/conftest.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from tubelets import masks
from tubelets.records import FrameDetections, VideoMeta, VideoProposals

HEIGHT, WIDTH = 48, 64  # the tiny detector's frame size


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every IPDT test on one torch thread (see ``one_torch_thread``)."""


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
