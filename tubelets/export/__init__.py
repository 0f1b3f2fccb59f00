"""A complete run's tubelets in other formats: ``tubelets export RUN_FOLDER DEST --format NAME``.

Each format is one module of this package with the same entry point, ``export(run_folder, dest_url, **options)``,
returning a summary with a ``lines()`` method for the command line. This module only names them, so that the
command line starts without importing what a format needs (numpy, pyarrow, Pillow).

Formats:

* ``instance-png`` (:mod:`tubelets.export.instance_png`): one 16-bit label image per frame,
  ``category_id * 1000 + instance``, scored against ground truth in the same format with ``gt_url``.
"""

from __future__ import annotations

import importlib
from typing import Any

from tubelets.errors import ConfigError

FORMATS = {"instance-png": "tubelets.export.instance_png"}

# A VIS run keeps low-scored tubelets: AP rewards a long ranked list, and the lowest ones are mostly wrong.
# A label image has no ranking, so each tubelet drawn is a claim; 0.5 keeps those more likely right than wrong
# (the default score, builtin:scorer-small, is the probability that a tubelet is a true track of its class).
DEFAULT_MIN_SCORE = 0.5


def export(fmt: str, run_folder: str, dest_url: str, **options: Any):
    """Write the run at ``run_folder`` (``OUTPUT/<run_id>``, complete) to ``dest_url`` in format ``fmt``."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
    return importlib.import_module(FORMATS[fmt]).export(run_folder, dest_url, **options)
