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


@pytest.fixture(scope="module")
def models():
    """``(detector, heads)``: an untrained ``small`` detector for 48x64 frames and small untrained IPDT heads.

    For the trackers' and VOS's logic and shape tests: nothing is read from a checkpoint.
    """
    from tubelets.models.detector import build_detector
    from tubelets.models.ipdt.model import IPDT, IPDTConfig

    torch.manual_seed(0)
    detector = build_detector({"preset": "small", "num_classes": 3, "min_size": 48, "max_size": 64}).eval()
    heads = IPDT(IPDTConfig(embedding_dim=8, siamese_channels=16, segmentation_channels=8, local_radius=2,
                            reference_pixels=16)).eval()
    return detector, heads
