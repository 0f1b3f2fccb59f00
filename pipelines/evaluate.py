"""``tubelets evaluate DATASET OUTPUT``: segment a labelled data set and score it.

Everything ``segment`` writes, plus each video's matches (the ``video_matches``
table, made in the pipeline where the video is tracked), then, once the
pipeline has ended, ``OUTPUT/<run_id>/results.json`` (YouTube-VIS results) and
the ``metrics`` table (:func:`score_run`). With ``--baseline RUN`` the ended run
is compared with RUN (:mod:`tubelets.compare`), and ``--fail-on-drop METRIC=X``
turns a real drop into exit 4.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from typing import Any, Iterator, Mapping, Optional, Sequence

import apache_beam as beam
import fsspec
import pyarrow.parquet as pq

from tubelets import runs
from tubelets.compare import (Gate, check_run, check_same_dataset, compare_runs, parse_gates, regression, table_rows,
                              to_text, unchecked_gates)
from tubelets.errors import ConfigError, DatasetError, RegressionError
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.results import ordered_results, stream_results
from tubelets.metrics.vis import VideoMatches, accumulate
from tubelets.metrics.vis_store import row_to_matches
from tubelets.pipelines.arguments import parse_run_arguments
from tubelets.pipelines.lifecycle import execute
from tubelets.pipelines.options import wave_videos
from tubelets.pipelines.run_setup import RunSpec, check_native_frames, prepare_run
from tubelets.pipelines.segment import build_pipeline as build_segment
from tubelets.pipelines.vos import run_vos
from tubelets.tables import METRICS, PART_FILE, TABLES, read_table, table_folder, with_provenance, write_table_file
from tubelets.transforms.evaluation import GroundTruth, MatchVideo, headline, load_ground_truth, metric_rows
from tubelets.transforms.inputs import ANNOTATIONS, is_dataset
from tubelets.transforms.outputs import WriteRunFiles

# Scoring compares masks with the ground truth frame by frame, at the data set's frame size: a strided,
# resampled or resized run would be scored against the wrong frames or sizes (and silently get about zero).
EVERY_FRAME = "evaluate scores every frame at the data set's size (use `segment` to subsample)"


def check_dataset(dataset_url: str) -> YouTubeVISDataset:
    """The data set to score against; it must be a labelled YouTube-VIS folder."""
    if not is_dataset(dataset_url):
        raise DatasetError(f"{dataset_url} is not a YouTube-VIS data set folder (no {ANNOTATIONS} in it)")
    dataset = YouTubeVISDataset(dataset_url)
    if not dataset.has_annotations:
        raise DatasetError(f"{dataset.annotations_url} has no annotations to score against (a test split?)")
    return dataset


def build_pipeline(p: beam.Pipeline, spec: RunSpec, digest: Optional[str] = None) -> dict[str, beam.PCollection]:
    """The segment graph plus each tracked video's matches. Graph only: :func:`run` has checked the frames and
    the data set before any video.

    ``digest``: the annotations' :func:`dataset_digest` (computed when not given). Nothing here
    gathers the bucket: results.json and the metrics are made after the run (:func:`score_run`).
    """
    outputs = build_segment(p, spec)
    matches = outputs["rows"] | "MatchVideo" >> beam.ParDo(MatchVideo(spec.input_url,
                                                                      digest or dataset_digest(spec.input_url)))
    matches | "WriteMatches" >> WriteRunFiles(spec.output_url, spec.run_id, "video_matches", spec.provenance)
    return {**outputs, "matches": matches}


def dataset_digest(dataset_url: str) -> str:
    """A digest of the data set's annotations: two runs scored the same ground truth when theirs agree."""
    with fsspec.open(YouTubeVISDataset(dataset_url).annotations_url, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


# ---- after the pipeline: every video's matches, the metrics, results.json ----------------------------------------
#
# Why here and not as the pipeline's last steps: both need the whole bucket, and Beam's Dask runner can bring a
# bucket's elements together only through a GroupByKey, which it runs as a task shuffle over the partitions, one
# per video (transforms/portable.py, GatherAll). Measured with Beam 2.78, scoring in the pipeline (a gather for
# results.json, another for the metrics, two more groupings to bring each video's results to its ground truth)
# made evaluate's Dask graph 5,047 tasks for 10 videos and 84,680 for 100, 9 in 10 of them shuffle tasks, against
# segment's 550 and 8,800; and results.json's gather held every mask of the bucket on one worker. Here the
# per-video files are read one at a time: nothing crosses a shuffle (the graph is segment's plus the matching:
# 650 and 9,925 tasks), and the memory is the matches (a few KB a video) and one video's results.


def score_run(spec: RunSpec, digest: str) -> list[dict]:
    """Score the ended run from its per-video files: returns the rows written to its ``metrics`` table.

    1. every video of the data set gets its ``video_matches`` file: the pipeline matched each video it
       tracked; a video that failed to decode, or that an earlier attempt of a resumed run finished without
       its matches stored, is matched here, from its tubelets file if it has one;
    2. the metrics: one accumulation over the ``video_matches`` table, written as the ``metrics`` table;
    3. ``results.json``: the tubelets files in video id order, one video at a time (:func:`stream_results`).

    The ``tubelets`` folder is listed once, here; the ``video_matches`` folder once for what it lacks and
    once read whole (:func:`stored_matches`), after the missing files are written.
    """
    truth = load_ground_truth(spec.input_url, digest)
    with_tubelets = runs.inputs_with_files(spec.output_url, spec.run_id, "tubelets")
    match_missing_videos(spec, truth, with_tubelets)
    metrics = accumulate(stored_matches(spec), truth.index.category_ids)
    rows = metric_rows(metrics, spec.input_url, spec.config["tracker"]["name"], spec.category_names)
    write_table_file(table_folder(spec.output_url, spec.run_id, "metrics"), PART_FILE, rows,
                     with_provenance(METRICS, spec.run_id, **spec.provenance), spec.run_id)
    stream_results(f"{spec.run_url}/results.json", results_in_order(spec, truth, with_tubelets))
    return rows


def match_missing_videos(spec: RunSpec, truth: GroundTruth, with_tubelets: set[str]) -> None:
    """Write the ``video_matches`` file of each video of the data set that has none yet.

    ``with_tubelets``: the stems of the videos with a tubelets file (a video without one is all missed).
    """
    with_matches = runs.inputs_with_files(spec.output_url, spec.run_id, "video_matches")
    folder = table_folder(spec.output_url, spec.run_id, "video_matches")
    schema = with_provenance(TABLES["video_matches"], spec.run_id, **spec.provenance)
    for stem in sorted(set(truth.videos) - with_matches):
        rows = tubelet_rows_of(spec, stem) if stem in with_tubelets else []
        write_table_file(folder, stem, [truth.matches_row(stem, rows)], schema, spec.run_id)


def stored_matches(spec: RunSpec) -> list[VideoMatches]:
    """Every video's matches from the run's ``video_matches`` table."""
    return [row_to_matches(row) for row in read_table(spec.output_url, "video_matches", spec.run_id).to_pylist()]


def results_in_order(spec: RunSpec, truth: GroundTruth, with_tubelets: set[str]) -> Iterator[dict]:
    """The run's YouTube-VIS results entries in ``results_order``, read a video at a time.

    ``results_order`` sorts by video id first, so the videos in id order, each one's entries sorted, are
    the whole file's order. ``with_tubelets``: the stems of the videos with a tubelets file.
    """
    for video_id, stem in sorted((video_id, stem) for stem, (video_id, _) in truth.videos.items()):
        if stem in with_tubelets:
            yield from ordered_results(tubelet_rows_of(spec, stem))


def tubelet_rows_of(spec: RunSpec, stem: str) -> list[dict]:
    """The rows of one video's tubelets file."""
    fs, path = fsspec.core.url_to_fs(f"{table_folder(spec.output_url, spec.run_id, 'tubelets')}/{stem}.parquet")
    return pq.read_table(path, filesystem=fs).to_pylist()


def _add_source(parser) -> None:
    parser.add_argument("--source", choices=("video", "jpeg"), default=None,
                        help="decode videos/<name>.mp4 or read JPEGImages/ frames (io.source)")


def _add_flags(parser) -> None:
    """``evaluate``'s own flags: the source, and the baseline to compare the run with (not ``segment``'s)."""
    _add_source(parser)
    parser.add_argument("--baseline", default=None, metavar="RUN_ID",
                        help="when the run ends, compare it with this complete evaluate run of OUTPUT (same data set): "
                        "differences and 95%% bootstrap intervals to stderr and the run's metrics table")
    parser.add_argument("--fail-on-drop", action="append", default=[], metavar="METRIC=X",
                        help="with --baseline: exit 4 when METRIC (AP ... ARl) is lower by more than X (0..1) and "
                        "the interval of the difference is below 0 (repeatable)")


def check_baseline(args, config: Mapping[str, Any], digest: str) -> list[Gate]:
    """``--baseline`` and ``--fail-on-drop`` checked before any video is read; the gates to apply."""
    gates = parse_gates(args.fail_on_drop)
    if gates and not args.baseline:
        raise ConfigError("--fail-on-drop compares with a baseline: give --baseline RUN_ID too")
    if not args.baseline:
        return gates
    if args.baseline == config["run"]["run_id"]:
        raise ConfigError(f"--baseline {args.baseline} is this run: give another run of {args.output}")
    manifest = check_run(args.output, args.baseline, "--baseline")
    check_same_dataset(manifest, digest, args.input)
    return gates


def compare_with_baseline(spec: RunSpec, baseline: str, gates: Sequence[Gate]) -> Optional[RegressionError]:
    """The ended run against ``baseline``: overall numbers to stderr, every number into the run's metrics table.

    The metrics table was written by the pipeline; the comparison is one more file beside its part files,
    ``metrics/comparison.parquet``. Returns the regression (exit 4) where a gate fails.
    """
    comparison = compare_runs(spec.output_url, baseline, spec.run_id)
    print(to_text(comparison, overall_only=True), end="", file=sys.stderr)
    schema = with_provenance(METRICS, spec.run_id, **spec.provenance)
    write_table_file(table_folder(spec.output_url, spec.run_id, "metrics"), "comparison", table_rows(comparison),
                     schema, spec.run_id)
    for line in unchecked_gates(comparison, gates):
        print(line, file=sys.stderr)
    return regression(comparison, gates)


def finish(spec: RunSpec, outcome, baseline: Optional[str], gates: Sequence[Gate]) -> None:
    """Compare with the baseline, then exit as the README says: 3 (too many failed inputs) outranks 4 (regression)."""
    failed = compare_with_baseline(spec, baseline, gates) if baseline else None
    if failed:  # the manifest's exit code is the command's
        runs.update_manifest(spec.output_url, spec.run_id, regression=str(failed),
                             exit_code=outcome.exit_code or failed.exit_code)
        if outcome.exit_code:
            print(f"tubelets: {failed}", file=sys.stderr)
    outcome.check()
    if failed:
        raise failed


def run(argv: Optional[Sequence[str]] = None, test_pipeline: Optional[beam.Pipeline] = None):
    """Parse ``evaluate`` arguments, run the pipeline, print the headline metrics; returns the run's spec."""
    args, config, options = parse_run_arguments("evaluate", argv, extend=_add_flags)
    if config["run"]["task"] != "vis":
        if args.baseline or args.fail_on_drop:
            raise ConfigError("--baseline and --fail-on-drop compare VIS runs; a VOS evaluation stores no matches")
        return run_vos(args, config, options, evaluate=True, test_pipeline=test_pipeline)
    check_native_frames(config, EVERY_FRAME)
    check_dataset(args.input)
    extra = {"dataset_digest": dataset_digest(args.input), "baseline_run_id": args.baseline}  # for the manifest
    gates = check_baseline(args, config, extra["dataset_digest"])
    resume = args.resume is not None
    spec = prepare_run(args.input, args.output, config, resume=resume)
    build = functools.partial(build_pipeline, digest=extra["dataset_digest"])
    # Scored before the run is marked complete: a failure while scoring marks it failed, a signal interrupted.
    spec, outcome = execute(spec, options, build, "evaluate", args.argv, args.max_failed, resume=resume,
                            test_pipeline=test_pipeline, progress_every=args.progress_every, extra=extra,
                            wave_videos=wave_videos(config, options),
                            score=functools.partial(score_run, digest=extra["dataset_digest"]))
    rows = outcome.scored
    print(f"{spec.config['tracker']['name']}: {headline(rows)}", file=sys.stderr)
    print(f"results: {spec.run_url}/results.json", file=sys.stderr)
    finish(spec, outcome, args.baseline, gates)
    return spec
