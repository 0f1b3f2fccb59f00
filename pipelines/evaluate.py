"""``tubelets evaluate DATASET OUTPUT``: segment a labelled data set and score it.

Everything ``segment`` writes, plus ``OUTPUT/<run_id>/results.json``
(YouTube-VIS results) and the ``metrics`` table, scored in the pipeline:
per-video matching in parallel, one global accumulation. With ``--baseline RUN``
the ended run is compared with RUN (:mod:`tubelets.compare`), and
``--fail-on-drop METRIC=X`` turns a real drop into exit 4.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any, Mapping, Optional, Sequence

import apache_beam as beam
import fsspec
import pyarrow.parquet as pq

from tubelets.compare import (Gate, check_run, check_same_dataset, compare_runs, parse_gates, regression, table_rows,
                              to_text, unchecked_gates)
from tubelets.errors import ConfigError, DatasetError, RegressionError
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.pipelines.arguments import parse_run_arguments
from tubelets.pipelines.lifecycle import execute
from tubelets.pipelines.run_setup import RunSpec, check_native_frames, prepare_run
from tubelets.pipelines.segment import build_pipeline as build_segment
from tubelets.pipelines.vos import run_vos
from tubelets.runs import inputs_with_files, stem_of_file, update_manifest
from tubelets.tables import METRICS, read_table, table_folder, to_arrow, with_provenance, write_parquet
from tubelets.transforms.evaluation import ScoreVideos, headline
from tubelets.transforms.inputs import ANNOTATIONS, is_dataset
from tubelets.transforms.outputs import WriteResultsFile, WriteRunFiles, WriteTable
from tubelets.tubelet_rows import results_from_rows

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


def build_pipeline(p: beam.Pipeline, spec: RunSpec) -> dict[str, beam.PCollection]:
    """The segment graph plus results.json and the metrics table. Graph only."""
    check_native_frames(spec.config, EVERY_FRAME)
    dataset = check_dataset(spec.input_url)
    outputs = build_segment(p, spec)
    video_rows = outputs["rows"]
    if spec.done:  # a resumed run scores the videos it finished before from the rows it wrote then
        earlier = p | "FinishedFiles" >> beam.Create(finished_tubelet_files(spec))
        video_rows = (video_rows, earlier | "ReadFinished" >> beam.Map(read_rows)) | "AllVideoRows" >> beam.Flatten()
    entries = video_rows | "ResultEntries" >> beam.FlatMap(lambda named_rows: results_from_rows(named_rows[1]))
    entries | "WriteResults" >> WriteResultsFile(f"{spec.run_url}/results.json")
    by_video = entries | "ByVideoId" >> beam.Map(lambda e: (e["video_id"], e)) | "GroupEntries" >> beam.GroupByKey()
    video_ids = outputs["videos"] | "VideoIds" >> beam.Map(lambda v: (v.video_id, v.key))
    score = ScoreVideos(
        dataset.annotations_url,
        [int(c["id"]) for c in dataset.categories],
        dataset=spec.input_url,
        tracker=spec.config["tracker"]["name"],
        category_names=spec.category_names,
    )
    scored = (video_ids, by_video) | "Score" >> score
    scored["rows"] | "WriteMetrics" >> WriteTable(spec.output_url, spec.run_id, "metrics", spec.provenance)
    scored["matches"] | "WriteMatches" >> WriteRunFiles(spec.output_url, spec.run_id, "video_matches", spec.provenance)
    return {**outputs, "metrics": scored["rows"]}


def dataset_digest(dataset_url: str) -> str:
    """A digest of the data set's annotations: two runs scored the same ground truth when theirs agree."""
    with fsspec.open(YouTubeVISDataset(dataset_url).annotations_url, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


def finished_tubelet_files(spec: RunSpec) -> list[str]:
    """URLs of the tubelets files of the videos a resumed run finished before."""
    folder = table_folder(spec.output_url, spec.run_id, "tubelets")
    with_tubelets = inputs_with_files(spec.output_url, spec.run_id, "tubelets")
    return [f"{folder}/{stem}.parquet" for stem in sorted(spec.done & with_tubelets)]


def read_rows(url: str) -> tuple[str, list[dict]]:
    """``(stem, rows)`` of one per-video tubelets file."""
    fs, path = fsspec.core.url_to_fs(url)
    return stem_of_file(path), pq.read_table(path, filesystem=fs).to_pylist()


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
    write_parquet(to_arrow(table_rows(comparison), schema),
                  f"{table_folder(spec.output_url, spec.run_id, 'metrics')}/comparison.parquet")
    for line in unchecked_gates(comparison, gates):
        print(line, file=sys.stderr)
    return regression(comparison, gates)


def finish(spec: RunSpec, outcome, baseline: Optional[str], gates: Sequence[Gate]) -> None:
    """Compare with the baseline, then exit as the README says: 3 (too many failed inputs) outranks 4 (regression)."""
    failed = compare_with_baseline(spec, baseline, gates) if baseline else None
    if failed:  # the manifest's exit code is the command's
        update_manifest(spec.output_url, spec.run_id, regression=str(failed),
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
    spec, outcome = execute(spec, options, build_pipeline, "evaluate", args.argv, args.max_failed, resume=resume,
                            test_pipeline=test_pipeline, progress_every=args.progress_every, extra=extra)
    rows = read_table(spec.output_url, "metrics", spec.run_id).to_pylist()
    print(f"{spec.config['tracker']['name']}: {headline(rows)}", file=sys.stderr)
    print(f"results: {spec.run_url}/results.json", file=sys.stderr)
    finish(spec, outcome, args.baseline, gates)
    return spec
