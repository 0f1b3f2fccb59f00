"""Fixtures shared by every test package."""

import pytest


@pytest.fixture(scope="session")
def tiny_shapes_set(tmp_path_factory):
    """``make(name, videos, seed, **options)``: a Shapes-VIS set of 64x48 frames (cheap for any model); its URL."""
    from tubelets.synth import generate_dataset

    def make(name: str, videos: int, seed: int, **options) -> str:
        root = tmp_path_factory.mktemp(name) / name
        generate_dataset(str(root), videos=videos, seed=seed, width=64, height=48, **options)
        return str(root)

    return make
