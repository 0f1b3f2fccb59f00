"""Shared by the pipeline commands: running the graph to its end, its counters, the closing summary.

The commands' arguments are parsed in :mod:`tubelets.pipelines.arguments`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from typing import Any, Callable, Iterator, Mapping, Optional

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tubelets.pipelines.local_runner import new_pipeline
from tubelets.runs import video_file_stem
from tubelets.transforms.portable import join_leaves

COUNTERS = ("videos", "frames", "proposals", "tubelets", "dead_letters")


def counter_values(result: Any) -> Optional[dict[str, int]]:
    """The pipeline's ``tubelets`` counters, committed values, zero where absent; None from a runner that
    reports no metrics (Beam's Dask runner 2.78: ``DaskRunnerResult.metrics()`` raises ``NotImplementedError``),
    whose run is counted from its files instead (:func:`counts_from_files`)."""
    try:
        queried = result.metrics().query(MetricsFilter().with_namespace("tubelets"))["counters"]
    except NotImplementedError:
        return None
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


def waves(spec, size: int) -> Iterator:
    """``spec`` as one spec per ``size`` inputs still to run, in listing order; ``[spec]`` when ``size`` is 0 or
    the inputs fit one wave. A wave's spec lists only its inputs: ``MatchInputs`` creates no element, hence no
    Dask partition, for the others."""
    todo = [item for item in spec.inputs if video_file_stem(item.key) not in spec.done] if size else []
    if len(todo) <= size:
        yield spec
        return
    for start in range(0, len(todo), size):
        yield dataclasses.replace(spec, inputs=tuple(todo[start:start + size]))


def run_to_end(spec, options: PipelineOptions, build: Callable, test_pipeline: Optional[beam.Pipeline] = None,
               wave_videos: int = 0) -> dict:
    """Build the graph with ``build(p, spec)``, run it, print a summary to stderr.

    Every sink is joined into one last step (:func:`tubelets.transforms.portable.join_leaves`), so a runner
    that computes only the last step's lineage (Beam's Dask runner) runs them all. With ``wave_videos``, the
    inputs run as one pipeline per that many, one after the other (:func:`waves`; a test pipeline runs once).
    """
    started = time.monotonic()
    measured = []
    for wave in waves(spec, 0 if test_pipeline is not None else wave_videos):
        pipeline = test_pipeline or new_pipeline(options)
        build(pipeline, wave)
        join_leaves(pipeline)
        result = pipeline.run()
        try:
            result.wait_until_finish()
            measured.append(counter_values(result))
        finally:
            release(result)
    # Without metrics, the files are counted once, for the whole attempt, after its last wave.
    counts = (counts_from_files(spec) if None in measured
              else {name: sum(values[name] for values in measured) for name in COUNTERS})
    seconds = time.monotonic() - started
    print(summary_line(spec.run_id, counts, seconds), file=sys.stderr)
    if counts["dead_letters"]:
        print(f"{counts['dead_letters']} input(s) went to dead letters: see {spec.run_url}/dead_letters/",
              file=sys.stderr)
    print(f"output: {spec.run_url}", file=sys.stderr)
    return counts
