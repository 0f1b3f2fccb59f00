"""Smoke tests of the maintained benchmarks: each script's ``main`` on tiny data, so that none can rot.

The scripts in ``benchmarks/`` import each other by module name, as they do
when run as ``python benchmarks/NAME.py``; their folder is put on the path
here. Every test here is marked ``smoke`` (``-m smoke`` runs them alone, ``-m
"not smoke"`` leaves them out) and must take seconds: one or two Shapes-VIS
videos of 64x48 frames (or fewer, smaller frames where a script makes its
own), the detector at that size, runs in memory where a script allows it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tubelets.synth import generate_dataset

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

WIDTH, HEIGHT = 64, 48
# The detector at the frames' size: the shipped preset would upsample 64x48 frames to 256x192 first.
TINY_DETECTOR = ["detector.min_size=48", "detector.max_size=64"]


def pytest_configure(config):
    config.addinivalue_line("markers", "smoke: a maintained benchmark's main on tiny data (tests/benchmarks)")


def as_set_args(overrides: list[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for override in overrides for arg in ("--set", override)]


def tiny_set(folder: Path, videos: int = 1, seed: int = 3, hard: bool = False) -> Path:
    """A Shapes-VIS set of ``videos`` videos of 64x48 frames at ``folder`` (mp4s, JPEGs, instances.json)."""
    generate_dataset(str(folder), videos=videos, seed=seed, width=WIDTH, height=HEIGHT, hard=hard)
    return folder


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory) -> Path:
    """Two Shapes-VIS videos of 64x48 frames, seed 3 (27 and 29 frames)."""
    return tiny_set(tmp_path_factory.mktemp("bench-shapes") / "shapes", videos=2)


def markdown_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown table rows of ``text`` whose first cell starts with ``first_cell``."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
    return [row for row in rows if row[0].startswith(first_cell)]


def instances(folder: Path) -> dict:
    return json.loads((folder / "instances.json").read_text())


@pytest.fixture(scope="session")
def bench():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    return SimpleNamespace(tiny_set=tiny_set, as_set_args=as_set_args, markdown_rows=markdown_rows,
                           instances=instances, TINY_DETECTOR=TINY_DETECTOR)
