"""Fixtures of the detector tests: a tiny generated Shapes-VIS set and tiny detector configs."""

from __future__ import annotations

import copy

import pytest
import torch

from tubelets.config import load_config
from tubelets.synth import generate_dataset


@pytest.fixture(scope="session")
def tiny_shapes_url(tmp_path_factory) -> str:
    """Two Shapes-VIS videos of 64x48 frames (JPEG only), seed 7."""
    root = tmp_path_factory.mktemp("tiny-shapes") / "shapes"
    generate_dataset(str(root), videos=2, seed=7, width=64, height=48, write_videos=False)
    return str(root)


@pytest.fixture
def small_cfg() -> dict:
    """The default config with an untrained ``small`` detector sized for 64x48 frames and a 4-step run."""
    cfg = copy.deepcopy(load_config())
    cfg["detector"].update(preset="small", checkpoint=None, min_size=48, max_size=64, device="cpu")
    cfg["train_detector"].update(steps=4, batch_size=2, warmup_steps=2, checkpoint_every=2)
    return cfg



@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread: under `pytest -n 2` on a 2-core machine, more threads oversubscribe the
    cores and OpenMP's busy waiting makes the detector tests several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# The tiny untrained models of the logic and shape tests (48x64 frames): nothing read from a checkpoint.
TINY_DETECTOR = {"preset": "small", "num_classes": 3, "min_size": 48, "max_size": 64, "checkpoint": None}
TINY_HEADS_SETTINGS = dict(embedding_dim=8, siamese_channels=16, segmentation_channels=8, local_radius=2,
                           reference_pixels=16)


def tiny_heads_config():
    from tubelets.models.ipdt.model import IPDTConfig

    return IPDTConfig(**TINY_HEADS_SETTINGS)


@pytest.fixture(scope="module")
def models():
    """``(detector, heads)``: the tiny untrained detector and IPDT heads, drawn from one seed."""
    from tubelets.models.detector import build_detector
    from tubelets.models.ipdt.model import IPDT

    torch.manual_seed(0)
    detector = build_detector(TINY_DETECTOR).eval()
    return detector, IPDT(tiny_heads_config()).eval()


@pytest.fixture(scope="session")
def tiny_detector():
    from tubelets.models.detector import build_detector

    torch.manual_seed(0)
    return build_detector(TINY_DETECTOR).eval()


@pytest.fixture
def tiny_model():
    from tubelets.models.ipdt.model import IPDT

    torch.manual_seed(1)
    return IPDT(tiny_heads_config()).eval()


@pytest.fixture
def tiny_detector_section() -> dict:
    """The ``detector:`` settings of the tiny detector (no checkpoint)."""
    return dict(TINY_DETECTOR)


@pytest.fixture
def tiny_heads():
    return tiny_heads_config()
