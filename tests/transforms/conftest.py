"""Fixtures of the transform tests: a tiny Shapes-VIS set, bad video files, a TestPipeline, a config."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from tubelets import masks
from tubelets.config import load_config
from tubelets.records import FrameDetections
from tubelets.synth import generate_dataset

# In-process runner: no worker processes to start, so a composite test takes a second or two.
BEAM_ARGS = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="session")
def shapes_url(tmp_path_factory) -> str:
    """Two Shapes-VIS videos of 64x48 frames (mp4 and JPEG), seed 5."""
    root = tmp_path_factory.mktemp("transforms-shapes") / "shapes"
    generate_dataset(str(root), videos=2, seed=5, width=64, height=48)
    return str(root)


@pytest.fixture(scope="session")
def bad_videos(tmp_path_factory) -> dict[str, str]:
    """Paths of unreadable inputs, by the ``VideoDecodeError`` reason each must get."""
    folder = tmp_path_factory.mktemp("bad-videos")
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    return {"not_a_video": str(corrupt), "empty": str(empty), "missing": str(folder / "missing.mp4")}


@pytest.fixture
def pipeline() -> TestPipeline:
    """A ``TestPipeline`` on the in-process DirectRunner; ``with pipeline as p:`` runs it at the end."""
    return TestPipeline(options=PipelineOptions(BEAM_ARGS))


@pytest.fixture
def config() -> dict:
    """The default config with an untrained detector on the CPU (no checkpoint file needed).

    The tracker is ``iou``: its tubelets follow exactly from the given proposals.
    """
    overrides = ["detector.checkpoint=null", "scoring.checkpoint=null", "detector.device=cpu", "tracker.name=iou"]
    return copy.deepcopy(load_config(None, overrides))


def _square_mask(height: int, width: int, x: int, y: int, side: int) -> np.ndarray:
    """uint8 ``[H, W]``, 1 inside the ``side`` x ``side`` square at column ``x``, row ``y``."""
    mask = np.zeros((height, width), np.uint8)
    mask[y : y + side, x : x + side] = 1
    return mask


def _square_detections(
    frame: int, squares: list[tuple[int, int, int, float]], size=(48, 64), side: int = 10
) -> FrameDetections:
    """One frame's detections of squares given as ``(x, y, label, score)``; boxes fit the masks."""
    height, width = size
    boxes = np.array([[x, y, x + side, y + side] for x, y, _, _ in squares], np.float32).reshape(-1, 4)
    return FrameDetections(
        frame=frame,
        boxes=boxes,
        scores=np.array([s for _, _, _, s in squares], np.float32),
        labels=np.array([label for _, _, label, _ in squares], np.int64),
        masks=[masks.encode(_square_mask(height, width, x, y, side)) for x, y, _, _ in squares],
    )


@pytest.fixture
def square_detections():
    """``square_detections(frame, [(x, y, label, score), ...], size=(H, W), side=10)`` -> ``FrameDetections``."""
    return _square_detections
