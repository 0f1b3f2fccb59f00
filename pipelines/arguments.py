"""The arguments of the pipeline commands (``segment``, ``evaluate``): ours, the config, and Beam's options.

The pipeline parses its own arguments (``run(argv)``), so Beam's flags (``--runner``, ...) pass through
the ``tubelets`` command line untouched; a flag neither ours nor Beam's is refused with a suggestion.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional, Sequence

from apache_beam.options.pipeline_options import PipelineOptions

from tubelets.config import load_config
from tubelets.errors import ConfigError
from tubelets.pipelines.lifecycle import MaxFailed
from tubelets.pipelines.options import pipeline_options
from tubelets.tables import TASKS


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every pipeline command takes; unknown ``--flags`` go to Beam."""
    parser.add_argument("input", help="a glob of video files, or a YouTube-VIS or DAVIS data set folder (any fsspec "
                        "URL)")
    parser.add_argument("output", help="OUTPUT folder on a file system Beam writes (a local path, gs://, s3:// ...); "
                        "each run gets OUTPUT/<run_id>/")
    parser.add_argument("--config", default=None, help="a preset name or a YAML file (any fsspec URL)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set tracker.iou.max_age=3 (repeatable)")
    parser.add_argument("--run-id", default=None,
                        help="name of this run: letters, digits, '.', '_', '-' (default: UTC time and a random suffix)")
    parser.add_argument("--resume", default=None, metavar="RUN_ID",
                        help="continue a failed or interrupted run with the same arguments: only the inputs it did "
                        "not finish are processed")
    parser.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS",
                        help="a progress line on stderr this often while the run runs (0: none; default 10)")
    parser.add_argument("--max-failed", default=MaxFailed(), type=MaxFailed.parse, metavar="N|FRACTION|PCT%",
                        help="inputs that may go to dead letters before the command exits 3 (default: the run fails "
                        "only when every input failed)")
    parser.add_argument("--tracker", default=None, help="tracker name (overrides tracker.name)")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="vis: every instance (default); vos: the objects masked in --prompts; "
                             "point: clicked (run.task)")
    parser.add_argument("--prompts", default=None,
                        help="--task vos|point: prompts JSON or a folder of DAVIS palette PNGs (vos.prompts)")


def config_from_args(args: argparse.Namespace) -> dict:
    """The run's config: defaults, ``--config``, ``--set``, then the shorthand flags."""
    overrides = list(args.overrides)
    resume = getattr(args, "resume", None)
    if resume and args.run_id and args.run_id != resume:
        raise ConfigError(f"--run-id {args.run_id} and --resume {resume} name two runs: give one")
    if args.run_id or resume:
        overrides.append(f"run.run_id={json.dumps(args.run_id or resume)}")
    if args.tracker:
        overrides.append(f"tracker.name={args.tracker}")
    if getattr(args, "source", None):
        overrides.append(f"io.source={args.source}")
    if getattr(args, "task", None):
        overrides.append(f"run.task={args.task}")
    if getattr(args, "prompts", None):
        overrides.append(f"vos.prompts={args.prompts}")
    config = load_config(args.config, overrides)
    if config["run"]["task"] not in TASKS:
        raise ConfigError(f"run.task must be one of {list(TASKS)}, got {config['run']['task']!r}")
    return config


def parse_run_arguments(
    command: str, argv: Optional[Sequence[str]], extend: Optional[Callable[[argparse.ArgumentParser], None]] = None
) -> tuple[argparse.Namespace, dict, PipelineOptions]:
    """``argv`` -> (our arguments, the config, Beam options from the remaining flags)."""
    parser = argparse.ArgumentParser(prog=f"tubelets {command}")
    add_run_arguments(parser)
    if extend:
        extend(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args, beam_args = parser.parse_known_args(argv)
    args.argv = argv
    own_flags = [flag for action in parser._actions for flag in action.option_strings]
    return args, config_from_args(args), pipeline_options(beam_args, own_flags=own_flags)
