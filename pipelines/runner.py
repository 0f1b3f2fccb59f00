"""Shared by the pipeline commands: argument parsing, running, the closing summary."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tubelets.config import load_config
from tubelets.errors import ConfigError
from tubelets.pipelines.lifecycle import MaxFailed
from tubelets.pipelines.options import pipeline_options
from tubelets.tables import TASKS
from tubelets.transforms.portable import join_leaves

COUNTERS = ("videos", "frames", "proposals", "tubelets", "dead_letters")


def add_run_arguments(parser: argparse.ArgumentParser, input_help: str) -> None:
    """Arguments every pipeline command takes; unknown ``--flags`` go to Beam."""
    parser.add_argument("input", help=input_help)
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
    add_run_arguments(parser, "a glob of video files, or a YouTube-VIS or DAVIS data set folder (any fsspec URL)")
    if extend:
        extend(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args, beam_args = parser.parse_known_args(argv)
    args.argv = argv
    own_flags = [flag for action in parser._actions for flag in action.option_strings]
    return args, config_from_args(args), pipeline_options(beam_args, own_flags=own_flags)


def counter_values(result: Any, spec=None) -> dict[str, Optional[int]]:
    """The pipeline's ``tubelets`` counters, committed values, zero where absent.

    A runner that reports no metrics (Beam's Dask runner 2.78: ``DaskRunnerResult.metrics()``
    raises ``NotImplementedError``) is counted from ``spec``'s run folder instead
    (:func:`tubelets.progress.count_files`); what the files cannot tell (proposals) is None, not 0.
    """
    try:
        queried = result.metrics().query(MetricsFilter().with_namespace("tubelets"))["counters"]
    except NotImplementedError:
        if spec is None:
            raise
        return counts_from_files(spec)
    values = dict.fromkeys(COUNTERS, 0)
    for counter in queried:
        values[counter.key.metric.name] = values.get(counter.key.metric.name, 0) + (counter.committed or 0)
    return values


def counts_from_files(spec) -> dict[str, Optional[int]]:
    """The counters as the run's files tell them, for this attempt (a resumed run's earlier inputs left out)."""
    from tubelets.progress import count_files

    found = count_files(spec.output_url, spec.run_id, skip=spec.done)
    return {"videos": found.videos, "frames": found.frames, "proposals": None, "tubelets": found.tubelets,
            "dead_letters": found.dead_letters}


def summary_line(run_id: str, counts: Mapping[str, Optional[int]], seconds: float) -> str:
    """``run R: 3 videos, 90 frames (16.4 frames/s), 633 proposals, 60 tubelets in 5.5s``; a counter
    the runner could not count is named as such."""
    fps = (counts["frames"] or 0) / seconds if seconds else 0.0
    proposals = counts.get("proposals")
    line = (f"run {run_id}: {counts['videos']} videos, {counts['frames']} frames ({fps:.1f} frames/s), "
            + (f"{proposals} proposals, " if proposals is not None else "")
            + f"{counts['tubelets']} tubelets in {seconds:.1f}s")
    uncounted = [name for name in COUNTERS if counts.get(name) is None]
    if uncounted:
        line += f" (this runner reports no metrics: counted from the run's files; not counted: {', '.join(uncounted)})"
    return line


def release(result: Any) -> None:
    """Close what the runner left open: Beam's Dask runner 2.78 never closes its ``distributed.Client``
    (``dask_runner.py:251``), nor the LocalCluster that client started without ``--dask-address``, whose
    workers then die at exit with ``CommClosedError`` tracebacks on the terminal. Closed here, while the
    process's stderr still goes to the run's log."""
    client = getattr(result, "client", None)
    if client is None or not hasattr(client, "close"):
        return
    cluster = getattr(client, "cluster", None)
    with contextlib.suppress(Exception):
        client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()


def run_to_end(spec, options: PipelineOptions, build: Callable, test_pipeline: Optional[beam.Pipeline] = None) -> dict:
    """Build the graph with ``build(p, spec)``, run it, print a summary to stderr.

    Every sink is joined into one last step (:func:`tubelets.transforms.portable.join_leaves`), so a runner
    that computes only the last step's lineage (Beam's Dask runner) runs them all.
    """
    started = time.monotonic()
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build(pipeline, spec)
    join_leaves(pipeline)
    result = pipeline.run()
    try:
        result.wait_until_finish()
        seconds = time.monotonic() - started
        counts = counter_values(result, spec)
    finally:
        release(result)
    print(summary_line(spec.run_id, counts, seconds), file=sys.stderr)
    if counts["dead_letters"]:
        print(f"{counts['dead_letters']} input(s) went to dead letters: see {spec.run_url}/dead_letters/",
              file=sys.stderr)
    print(f"output: {spec.run_url}", file=sys.stderr)
    return counts
