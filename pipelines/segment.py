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
from tubelets.errors import ConfigError, DatasetError, TubeletsError
from tubelets.runs import video_file_stem
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS
from tubelets.transforms.decode import META, DecodeVideo
from tubelets.transforms.inputs import MatchInputs, VideoInput, expand_input
from tubelets.transforms.outputs import WriteRunFiles, dead_letter_file
from tubelets.transforms.portable import SplitOutputs
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
    input_keys: frozenset = frozenset()  # every input's key (VideoInput.key)
    done: frozenset = frozenset()  # stems (tubelets.runs.video_file_stem) of the inputs a resumed run finished before
    inputs: tuple = ()  # every input's VideoInput, as listed at launch (MatchInputs lists INPUT itself when empty)

    @property
    def input_stems(self) -> frozenset:
        return frozenset(video_file_stem(key) for key in self.input_keys)

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
    """OUTPUT must be a folder (or not exist yet) on a file system Beam writes (local, gs://, s3://, ...)."""
    try:
        FileSystems.get_filesystem(output_url)
    except ValueError as error:
        raise ConfigError(f"OUTPUT {output_url!r}: Beam cannot write there ({error})") from None
    try:
        fs, path = fsspec.core.url_to_fs(output_url)
        is_file = fs.isfile(path)
    except Exception as error:  # noqa: BLE001 - credentials, network, permissions: say which in one line
        raise ConfigError(f"OUTPUT {output_url!r} cannot be reached: {type(error).__name__}: {error}") from None
    if is_file:
        raise ConfigError(f"OUTPUT {output_url!r} is a file: give a folder (each run writes OUTPUT/<run_id>/)")


def prepare_run(input_url: str, output_url: str, config: Mapping[str, Any], resume: bool = False) -> RunSpec:
    """Check the output, the run id, the devices, the checkpoints and INPUT before any video is read.

    An OUTPUT Beam cannot write to, or that is a file, raises ``ConfigError``;
    so does a run id that is taken (or, with ``resume``, a run that cannot be
    resumed); a missing, corrupt or mismatched checkpoint (detector or tracker)
    raises ``CheckpointError``; an INPUT with no video raises ``DatasetError``.
    """
    from tubelets.models.loading import check_devices, load_detector
    from tubelets.pipelines.lifecycle import choose_run_id

    check_output(output_url)
    run_id = choose_run_id(output_url, config, resume)
    config = with_run_id(config, run_id)
    check_devices(config)
    check_proposals(config["proposals"])
    _, checkpoint = load_detector({"detector": {**config["detector"], "device": "cpu"}})
    check_tracker(config["tracker"])
    inputs = list_inputs(input_url, config["io"]["source"])
    names = {int(c["id"]): str(c["name"]) for c in checkpoint.categories}
    return RunSpec(input_url, output_url, run_id, config, checkpoint.checkpoint_id, names,
                   frozenset(item.key for item in inputs), inputs=inputs)


def with_run_id(config: Mapping[str, Any], run_id: str) -> dict:
    """``config`` with ``run.run_id`` filled in, as the manifest records it (a resume compares it)."""
    return {**config, "run": {**config["run"], "run_id": run_id}}


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


def list_inputs(input_url: str, source: str) -> tuple[VideoInput, ...]:
    """Every video INPUT names (``VideoInput``), in a stable order; at least one.

    INPUT must be a data set folder (YouTube-VIS or DAVIS) or match at least one
    video file. A mistyped INPUT fails here, in one line, before a run folder
    exists; the listing gives the run the inputs it must account for and is
    what the pipeline's ``MatchInputs`` starts from.
    """
    try:
        inputs = tuple(expand_input(input_url, source))
    except TubeletsError:
        raise
    except Exception as error:  # noqa: BLE001 - credentials, network, permissions: say which in one line
        raise DatasetError(f"INPUT {input_url!r} cannot be read: {type(error).__name__}: {error}") from None
    if not inputs:
        raise DatasetError(
            f"INPUT {input_url!r} matches no video files and is not a YouTube-VIS or DAVIS data set folder"
        )
    return inputs


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
    videos = p | "MatchInputs" >> MatchInputs(spec.input_url, source=io["source"], inputs=spec.inputs or None)
    decoded = skip_finished(videos, spec.done) | "Decode" >> SplitOutputs(
        DecodeVideo(stride=io["stride"], fps=io["fps"], max_size=io["max_size"]), META, DEAD_LETTERS, main="frames")
    detect_every = spec.config["proposals"]["detect_every"]
    detections = decoded.frames | "Proposals" >> ProposeInstances(detector_handler(spec.config), detect_every)
    proposals = (decoded[META], detections) | "GroupProposals" >> GroupProposals(detect_every)
    tracked = proposals | "Track" >> beam.ParDo(TrackVideo(spec.config))
    return {"videos": videos, "tracked": tracked, "dead_letters": decoded[DEAD_LETTERS]}


def skip_finished(videos: beam.PCollection, done: frozenset) -> beam.PCollection:
    """The videos a resumed run still has to do (all of them in a new run)."""
    if not done:
        return videos
    return videos | "SkipFinished" >> beam.Filter(lambda video: video_file_stem(video.key) not in done)


def write_video_rows(tracked: beam.PCollection, dead_letters: beam.PCollection, spec: RunSpec,
                     to_rows) -> beam.PCollection:
    """Each video's tubelet rows to its own file, each dead letter to its own; returns ``(stem, rows, metadata)``."""
    run_id = spec.run_id
    rows = tracked | "TubeletRows" >> beam.Map(
        lambda mt: (video_file_stem(mt[0].key), to_rows(mt, run_id), {"video_frames": mt[0].length}))
    rows | "WriteTubelets" >> WriteRunFiles(spec.output_url, run_id, "tubelets", spec.provenance)
    (
        dead_letters
        | "DeadLetterFiles" >> beam.Map(dead_letter_file)
        | "WriteDeadLetters" >> WriteRunFiles(spec.output_url, run_id, "dead_letters", spec.provenance)
    )
    return rows


def build_pipeline(p: beam.Pipeline, spec: RunSpec) -> dict[str, beam.PCollection]:
    """The segment graph: each video's tubelets and each dead letter to Parquet. Graph only, runs nothing."""
    from tubelets.models.tubelet_ops import tubelet_rows

    outputs = build_tracking(p, spec)
    names = spec.category_names
    rows = write_video_rows(outputs["tracked"], outputs["dead_letters"], spec,
                            lambda mt, run_id: tubelet_rows(mt[1], mt[0], run_id, names))
    return {**outputs, "rows": rows}


def run(argv: Optional[Sequence[str]] = None, test_pipeline: Optional[beam.Pipeline] = None):
    """Parse ``segment`` arguments, build the graph and run it to the end; returns the run's spec.

    Raises ``TooManyFailedInputs`` when more inputs failed than ``--max-failed`` allows.
    """
    from tubelets.pipelines.lifecycle import execute
    from tubelets.pipelines.runner import parse_run_arguments

    args, config, options = parse_run_arguments("segment", argv)
    if config["run"]["task"] != "vis":
        from tubelets.pipelines.vos import run_vos

        return run_vos(args, config, options, evaluate=False, test_pipeline=test_pipeline)
    spec = prepare_run(args.input, args.output, config, resume=args.resume is not None)
    spec, outcome = execute(spec, options, build_pipeline, "segment", args.argv, args.max_failed,
                            resume=args.resume is not None, test_pipeline=test_pipeline,
                            progress_every=args.progress_every)
    outcome.check()
    return spec
