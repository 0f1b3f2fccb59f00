"""Beam options for tubelets' pipelines: the runner is always named.

Recent Beam, given no runner, first tries to download the Prism runner binary;
a tubelets run names ``DirectRunner`` unless the user names another, in
multi-process mode so that a laptop's cores all work.
"""

from __future__ import annotations

import os
from typing import Sequence

from apache_beam.options.pipeline_options import PipelineOptions


def _has_option(beam_args: Sequence[str], name: str) -> bool:
    return any(arg == f"--{name}" or arg.startswith(f"--{name}=") for arg in beam_args)


def with_default_runner(beam_args: Sequence[str]) -> list[str]:
    """``beam_args`` plus the local runner's defaults where the user set nothing."""
    args = list(beam_args)
    if not _has_option(args, "runner"):
        args.append("--runner=DirectRunner")
    runner = next(a.split("=", 1)[1] for a in args if a.startswith("--runner="))
    if runner in ("DirectRunner", "direct"):
        if not _has_option(args, "direct_running_mode"):
            args.append("--direct_running_mode=multi_processing")
        if not _has_option(args, "direct_num_workers"):
            args.append(f"--direct_num_workers={min(4, os.cpu_count() or 1)}")
    return args


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Options for ``beam.Pipeline``, with the runner always named."""
    return PipelineOptions(with_default_runner(beam_args))


def is_local_runner(options: PipelineOptions) -> bool:
    """Whether the pipeline runs in this process tree (progress can be printed live)."""
    runner = options.get_all_options().get("runner") or ""
    return runner in ("DirectRunner", "direct", "InProcessRunner", "")
