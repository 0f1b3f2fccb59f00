"""Smoke tests of the maintained benchmarks: each script's ``main`` on tiny data, so that none can rot.

The scripts in ``benchmarks/`` import each other by module name, as they do
when run as ``python benchmarks/NAME.py``; their folder is put on the path
here. Every test here is marked ``smoke`` (``-m smoke`` runs them alone, ``-m
"not smoke"`` leaves them out) and runs on tiny data: one or two Shapes-VIS
videos of 64x48 frames (or fewer, smaller frames where a script makes its
own), the detector at that size, runs in memory where a script allows it.
Most take seconds; those that start commands in processes of their own take
10 to 30 s (the imports of Beam and torch, in each), and gpu_check's tiny run
of seven phases, 40 s on an idle 2-core machine, is also marked ``slow``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

# The detector at the frames' size: the shipped preset would upsample 64x48 frames to 256x192 first.
TINY_DETECTOR = ["detector.min_size=48", "detector.max_size=64"]


def pytest_configure(config):
    config.addinivalue_line("markers", "smoke: a maintained benchmark's main on tiny data (tests/benchmarks)")


@pytest.fixture(scope="session")
def tiny_shapes(tiny_shapes_set) -> Path:
    """Two Shapes-VIS videos of 64x48 frames, seed 3 (27 and 29 frames)."""
    return Path(tiny_shapes_set("shapes", videos=2, seed=3))


def markdown_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown table rows of ``text`` whose first cell starts with ``first_cell``."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
    return [row for row in rows if row[0].startswith(first_cell)]


def instances(folder: Path) -> dict:
    return json.loads((folder / "instances.json").read_text())


@pytest.fixture(scope="session")
def bench(tiny_shapes_set):
    """The helpers here, for test modules (importlib mode cannot import conftest)."""
    from shapes_vis import as_set_args

    def tiny_set(folder: Path, videos: int = 1, seed: int = 3, **options) -> Path:
        """A Shapes-VIS set of ``videos`` videos of 64x48 frames at ``folder`` (the root fixture's; ``options``
        as ``generate_dataset``'s: ``write_videos=False, write_jpegs=False`` where only instances.json is read)."""
        return Path(tiny_shapes_set(folder.name, videos, seed, folder=folder, **options))

    def fake_runs(work: Path, variants: list[str]) -> None:
        """The ablation's folder as ``ablation.py`` leaves it, with noisy copies of the truth as each run's
        results (its set without frames: only its instances.json is read)."""
        import ablation

        from tubelets.synth.predictions import noisy_predictions

        folder = tiny_set(ablation.set_folder(work, 1234, "default"), write_videos=False, write_jpegs=False)
        for seed, variant in enumerate(v for v in ablation.VARIANTS if v.name in variants):
            runs = work / "runs" / ablation.run_id("default", variant.label)
            runs.mkdir(parents=True)
            (runs / "results.json").write_text(json.dumps(noisy_predictions(instances(folder), seed,
                                                                             skip_video_rate=0.0)))

    return SimpleNamespace(tiny_set=tiny_set, fake_runs=fake_runs, as_set_args=as_set_args,
                           markdown_rows=markdown_rows, instances=instances, TINY_DETECTOR=TINY_DETECTOR)
