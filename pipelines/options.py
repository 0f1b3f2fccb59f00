"""Beam options for tubelets' pipelines: the runner is always named.

Recent Beam, given no runner, first tries to download the Prism runner binary;
a tubelets run names ``DirectRunner`` unless the user names another, in
multi-process mode so that a laptop's cores all work.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from apache_beam.options.pipeline_options import PipelineOptions

DIRECT_RUNNER_NAMES = ("directrunner", "direct")


def _option_value(beam_args: Sequence[str], name: str) -> Optional[str]:
    """The value of ``--name=value`` or ``--name value`` (the last one given), None when absent."""
    value = None
    for index, arg in enumerate(beam_args):
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{name}" and index + 1 < len(beam_args):
            value = beam_args[index + 1]
    return value


def with_default_runner(beam_args: Sequence[str]) -> list[str]:
    """``beam_args`` plus the local runner's defaults where the user set nothing.

    The user's ``--runner`` is never replaced. For the DirectRunner, the
    running mode defaults to multi-processing, and the worker count is added
    only for a mode that uses it (in-memory warns about a worker count).
    """
    args = list(beam_args)
    runner = _option_value(args, "runner")
    if runner is None:
        runner = "DirectRunner"
        args.append(f"--runner={runner}")
    if runner.lower() in DIRECT_RUNNER_NAMES:
        mode = _option_value(args, "direct_running_mode")
        if mode is None:
            mode = "multi_processing"
            args.append(f"--direct_running_mode={mode}")
        if mode != "in_memory" and _option_value(args, "direct_num_workers") is None:
            args.append(f"--direct_num_workers={min(4, os.cpu_count() or 1)}")
    return args


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Options for ``beam.Pipeline``, with the runner always named."""
    return PipelineOptions(with_default_runner(beam_args))


def is_local_runner(options: PipelineOptions) -> bool:
    """Whether the pipeline runs in this process tree (progress can be printed live)."""
    runner = options.get_all_options().get("runner") or ""
    return runner.lower() in (*DIRECT_RUNNER_NAMES, "inprocessrunner", "")
