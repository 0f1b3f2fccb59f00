"""Fixtures shared by every test package."""

import tempfile

import pytest


@pytest.fixture(autouse=True)
def temp_folder(tmp_path_factory, monkeypatch):
    """This test's own temp folder for this process (beside its tmp_path, which stays the test's own): graphs
    built and never run leave Beam's folder there, not in /tmp; and a test can see what a run leaves behind."""
    folder = tmp_path_factory.mktemp("temp")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_shapes_set(tmp_path_factory):
    """``make(name, videos, seed, folder=None, **options)``: a Shapes-VIS set of 64x48 frames (cheap for any model)
    in a fresh temporary folder ``name``, or at ``folder`` where a test needs it at a given path; its URL."""
    from tubelets.synth import generate_dataset

    def make(name: str, videos: int, seed: int, folder=None, **options) -> str:
        root = folder if folder is not None else tmp_path_factory.mktemp(name) / name
        generate_dataset(str(root), videos=videos, seed=seed, width=64, height=48, **options)
        return str(root)

    return make
