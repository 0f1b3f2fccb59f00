"""``tubelets evaluate DATASET OUTPUT``: segment a labelled data set and score it.

Everything ``segment`` writes, plus ``OUTPUT/<run_id>/results.json``
(YouTube-VIS results) and the ``metrics`` table, scored in the pipeline:
per-video matching in parallel, one global accumulation.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any, Mapping, Optional, Sequence

import apache_beam as beam
import fsspec
import pyarrow.parquet as pq

from tubelets.errors import ConfigError, DatasetError
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.pipelines.segment import RunSpec, build_pipeline as build_segment, prepare_run
from tubelets.runs import inputs_with_files, stem_of_file
from tubelets.tables import read_table, table_folder
from tubelets.transforms.evaluation import ScoreVideos, headline
from tubelets.transforms.inputs import ANNOTATIONS, is_dataset
from tubelets.transforms.outputs import WriteResultsFile, WriteRunFiles, WriteTable


def check_dataset(dataset_url: str) -> YouTubeVISDataset:
    """The data set to score against; it must be a labelled YouTube-VIS folder."""
    if not is_dataset(dataset_url):
        raise DatasetError(f"{dataset_url} is not a YouTube-VIS data set folder (no {ANNOTATIONS} in it)")
    dataset = YouTubeVISDataset(dataset_url)
    if not dataset.has_annotations:
        raise DatasetError(f"{dataset.annotations_url} has no annotations to score against (a test split?)")
    return dataset


def check_every_frame(config: Mapping[str, Any]) -> None:
    """Scoring compares masks with the ground truth frame by frame, at the data set's frame size.

    A strided, resampled or resized run would be scored against the wrong
    frames or sizes (and silently get about zero), so it is refused.
    """
    io = config["io"]
    if io["stride"] != 1 or io["fps"] is not None or io["max_size"] is not None:
        raise ConfigError(
            f"evaluate scores every frame at the data set's size, so it needs io.stride=1, io.fps=null and "
            f"io.max_size=null (got {io['stride']}, {io['fps']}, {io['max_size']}); use `segment` to subsample"
        )


def build_pipeline(p: beam.Pipeline, spec: RunSpec) -> dict[str, beam.PCollection]:
    """The segment graph plus results.json and the metrics table. Graph only."""
    from tubelets.models.tubelet_ops import results_from_rows

    check_every_frame(spec.config)
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


def run(argv: Optional[Sequence[str]] = None, test_pipeline: Optional[beam.Pipeline] = None):
    """Parse ``evaluate`` arguments, run the pipeline, print the headline metrics; returns the run's spec."""
    from tubelets.pipelines.lifecycle import execute
    from tubelets.pipelines.runner import parse_run_arguments

    args, config, options = parse_run_arguments("evaluate", argv, extend=_add_source)
    if config["run"]["task"] != "vis":
        from tubelets.pipelines.vos import run_vos

        return run_vos(args, config, options, evaluate=True, test_pipeline=test_pipeline)
    check_every_frame(config)
    check_dataset(args.input)
    resume = args.resume is not None
    spec = prepare_run(args.input, args.output, config, resume=resume)
    dataset = {"dataset_digest": dataset_digest(args.input)}
    spec, outcome = execute(spec, options, build_pipeline, "evaluate", args.argv, args.max_failed, resume=resume,
                            test_pipeline=test_pipeline, extra=dataset)
    rows = read_table(spec.output_url, "metrics", spec.run_id).to_pylist()
    print(f"{spec.config['tracker']['name']}: {headline(rows)}", file=sys.stderr)
    print(f"results: {spec.run_url}/results.json", file=sys.stderr)
    outcome.check()
    return spec
