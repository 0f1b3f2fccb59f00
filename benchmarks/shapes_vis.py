"""What the benchmarks on Shapes-VIS data share: the preset, the command line, generating a set once.

Shapes-VIS (``tubelets synth``) draws flat-colour objects, so its runs take the
``shapes-vis`` preset (``configs/shapes-vis.yaml``): the colour identity rules
the defaults leave off for real footage are on there, and the recorded figures
(``docs/results.md``, ``docs/tracker-record.md``) were measured with them.
A benchmark names :data:`PRESET`, never the string.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PRESET = "shapes-vis"
TUBELETS = [sys.executable, "-m", "tubelets.cli"]  # the command line a user runs, in this interpreter


def runner_flags(workers: int) -> list[str]:
    """The DirectRunner's flags for ``workers`` worker processes a run; 0 runs in memory, in the command's process."""
    return ["--direct_running_mode=in_memory"] if workers == 0 else [f"--direct_num_workers={workers}"]


def workers_label(workers: int) -> str:
    """How a table names the runner's setting of :func:`runner_flags`: "in memory" (0), "1 worker process", ..."""
    return "in memory" if workers == 0 else f"{workers} worker process{'es' if workers > 1 else ''}"


def as_set_args(overrides) -> list[str]:
    """Config overrides as a command line's options: ``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for override in overrides for arg in ("--set", override)]


def synthesize(folder: Path, videos: int, seed: int, flags: list[str]) -> Path:
    """``tubelets synth FOLDER --videos --seed FLAGS`` unless the set is there; a set of another size is refused."""
    if not (folder / "instances.json").exists():
        subprocess.run([*TUBELETS, "synth", str(folder), "--videos", str(videos), "--seed", str(seed), *flags],
                       check=True)
    present = len(json.loads((folder / "instances.json").read_text())["videos"])
    if present != videos:
        raise SystemExit(f"{folder} holds {present} videos, not {videos}: use another --work folder")
    return folder
