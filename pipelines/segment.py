"""``tubelets segment INPUT OUTPUT``: videos in, tubelets and dead letters out, as Parquet.

Graph: MatchInputs -> Decode -> Proposals (RunInference) -> GroupProposals ->
Track (class calibration + tracker) -> TubeletRows -> WriteTubelets, and
Decode's dead letters -> WriteDeadLetters.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping, Optional, Sequence

import apache_beam as beam
import fsspec
from apache_beam.io.filesystems import FileSystems

from tubelets.config import config_hash
from tubelets.errors import ConfigError, DatasetError
from tubelets.io.dataset import list_videos
from tubelets.tables import default_run_id
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS
from tubelets.transforms.decode import META, DecodeVideo
from tubelets.transforms.inputs import MatchInputs, is_dataset, is_davis
from tubelets.transforms.outputs import WriteTable
from tubelets.transforms.proposals import DetectorModelHandler, ProposeInstances
from tubelets.transforms.tracking import GroupProposals, TrackVideo

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What one run reads and writes, decided before the graph is built."""

    input_url: str
    output_url: str
    run_id: str
    config: Mapping[str, Any]
    checkpoint_id: str
    category_names: Mapping[int, str]

    @property
    def run_url(self) -> str:
        return f"{self.output_url.rstrip('/')}/{self.run_id}"

    @property
    def provenance(self) -> dict[str, str]:
        return {
            "config_hash": config_hash(self.config),
            "checkpoint_id": self.checkpoint_id,
            "tracker": self.config["tracker"]["name"],
            "input": self.input_url,
            "task": self.config["run"]["task"],
        }


def check_output(output_url: str) -> None:
    """Beam writes the tables, so OUTPUT must be on a file system Beam has (local, gs://, s3://, ...)."""
    try:
        FileSystems.get_filesystem(output_url)
    except ValueError as error:
        raise ConfigError(f"OUTPUT {output_url!r}: Beam cannot write there ({error})") from None


def prepare_run(input_url: str, output_url: str, config: Mapping[str, Any]) -> RunSpec:
    """Check the output, the checkpoint and the run folder before any video is read.

    An OUTPUT Beam cannot write to raises ``ConfigError``; a missing, corrupt or
    mismatched checkpoint (detector or tracker) raises ``CheckpointError``; a
    run id whose folder already exists raises ``ConfigError``, so a rerun never
    overwrites another run's files.
    """
    from tubelets.models.loading import load_detector

    check_output(output_url)
    check_proposals(config["proposals"])
    _, checkpoint = load_detector({"detector": {**config["detector"], "device": "cpu"}})
    check_tracker(config["tracker"])
    run_id = new_run_id(output_url, config)
    check_input(input_url)
    names = {int(c["id"]): str(c["name"]) for c in checkpoint.categories}
    return RunSpec(input_url, output_url, run_id, config, checkpoint.checkpoint_id, names)


def new_run_id(output_url: str, config: Mapping[str, Any]) -> str:
    """``run.run_id`` (default: a UTC timestamp); its folder must not exist, so a run never overwrites another."""
    run_id = config["run"]["run_id"] or default_run_id()
    fs, path = fsspec.core.url_to_fs(f"{output_url.rstrip('/')}/{run_id}")
    if fs.exists(path):
        raise ConfigError(f"run folder {output_url.rstrip('/')}/{run_id} exists already: choose another run.run_id")
    return run_id


def check_proposals(proposals: Mapping[str, Any]) -> None:
    """``proposals.detect_every`` is a whole number of frames, 1 or more."""
    every = proposals["detect_every"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"proposals.detect_every must be a whole number of frames, 1 or more (1: every frame), "
                          f"got {every!r}")


def check_tracker(tracker_cfg: Mapping[str, Any]) -> None:
    """Build the run's tracker once here (on the CPU), so bad settings or a bad checkpoint fail before any video."""
    from tubelets.models.trackers import build_tracker

    name = tracker_cfg["name"]
    settings = tracker_cfg.get(name)
    if isinstance(settings, Mapping) and "device" in settings:
        tracker_cfg = {**tracker_cfg, name: {**settings, "device": "cpu"}}
    build_tracker(name, tracker_cfg)


def check_input(input_url: str) -> None:
    """INPUT must be a data set folder (YouTube-VIS or DAVIS) or match at least one video file.

    The listing that feeds the pipeline runs again on a worker; this one only
    makes a mistyped INPUT fail here, in one line, before a run folder exists.
    """
    if not is_dataset(input_url) and not is_davis(input_url) and not list_videos(input_url):
        raise DatasetError(
            f"INPUT {input_url!r} matches no video files and is not a YouTube-VIS or DAVIS data set folder"
        )


def detector_handler(config: Mapping[str, Any]) -> DetectorModelHandler:
    proposals = config["proposals"]
    return DetectorModelHandler(
        config["detector"],
        device=config["detector"]["device"],
        batch_size=proposals["batch_size"],
        torch_threads=proposals["torch_threads"],
    )


def build_tracking(p: beam.Pipeline, spec: RunSpec) -> dict[str, beam.PCollection]:
    """The shared part of segment and evaluate: inputs to tracked videos and dead letters."""
    io = spec.config["io"]
    videos = p | "MatchInputs" >> MatchInputs(spec.input_url, source=io["source"])
    decoded = videos | "Decode" >> beam.ParDo(
        DecodeVideo(stride=io["stride"], fps=io["fps"], max_size=io["max_size"])
    ).with_outputs(META, DEAD_LETTERS, main="frames")
    detect_every = spec.config["proposals"]["detect_every"]
    detections = decoded.frames | "Proposals" >> ProposeInstances(detector_handler(spec.config), detect_every)
    proposals = (decoded[META], detections) | "GroupProposals" >> GroupProposals(detect_every)
    tracked = proposals | "Track" >> beam.ParDo(TrackVideo(spec.config))
    return {"videos": videos, "tracked": tracked, "dead_letters": decoded[DEAD_LETTERS]}


def build_pipeline(p: beam.Pipeline, spec: RunSpec) -> dict[str, beam.PCollection]:
    """The segment graph: tubelets and dead letters to Parquet. Graph only, runs nothing."""
    from tubelets.models.tubelet_ops import tubelet_rows

    outputs = build_tracking(p, spec)
    names, run_id = spec.category_names, spec.run_id
    (
        outputs["tracked"]
        | "TubeletRows" >> beam.FlatMap(lambda mt: tubelet_rows(mt[1], mt[0], run_id, names))
        | "WriteTubelets" >> WriteTable(spec.output_url, run_id, "tubelets", spec.provenance)
    )
    outputs["dead_letters"] | "WriteDeadLetters" >> WriteTable(spec.output_url, run_id, "dead_letters", spec.provenance)
    return outputs


def run(argv: Optional[Sequence[str]] = None, test_pipeline: Optional[beam.Pipeline] = None):
    """Parse ``segment`` arguments, build the graph and run it to the end; returns the run's spec."""
    from tubelets.pipelines.runner import parse_run_arguments, run_to_end

    args, config, options = parse_run_arguments("segment", argv)
    if config["run"]["task"] != "vis":
        from tubelets.pipelines.vos import run_vos

        return run_vos(args, config, options, evaluate=False, test_pipeline=test_pipeline)
    spec = prepare_run(args.input, args.output, config)
    run_to_end(spec, options, build_pipeline, test_pipeline)
    return spec
