"""What every pipeline run settles before its graph is built, and the two graph steps they all share.

``segment``, ``evaluate`` and their VOS forms (:mod:`tubelets.pipelines.vos`) start the same way: OUTPUT
must be a folder Beam writes, the run id free (or, resumed, a run that can be resumed), the devices there
and INPUT must list at least one video (:func:`run_config`, :func:`list_inputs`); a mistake fails here, in
one line, before a run folder exists. VIS runs also load the detector and build the tracker once
(:func:`prepare_run`). What they decided is a :class:`RunSpec`. In the graph, every run skips the videos a
resumed run finished (:func:`skip_finished`) and writes each video's rows and each dead letter to a file
of its own (:func:`write_video_rows`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import apache_beam as beam
import fsspec
from apache_beam.io.filesystems import FileSystems

from tubelets.config import config_hash
from tubelets.errors import ConfigError, DatasetError, TubeletsError
from tubelets.models.loading import CheckpointInfo, check_devices, load_detector
from tubelets.models.trackers import build_tracker
from tubelets.pipelines.lifecycle import choose_run_id
from tubelets.runs import video_file_stem
from tubelets.transforms.inputs import VideoInput, expand_input
from tubelets.transforms.outputs import WriteRunFiles, dead_letter_file


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What one run reads and writes, decided before the graph is built."""

    input_url: str
    output_url: str
    run_id: str
    config: Mapping[str, Any]
    checkpoint_id: str
    category_names: Mapping[int, str]
    done: frozenset = frozenset()  # stems (tubelets.runs.video_file_stem) of the inputs a resumed run finished before
    inputs: tuple = ()  # every input's VideoInput, as listed at launch (MatchInputs lists INPUT itself when empty)

    @property
    def input_keys(self) -> frozenset:
        """Every input's key (``VideoInput.key``)."""
        return frozenset(item.key for item in self.inputs)

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


def with_run_id(config: Mapping[str, Any], run_id: str) -> dict:
    """``config`` with ``run.run_id`` filled in, as the manifest records it (a resume compares it)."""
    return {**config, "run": {**config["run"], "run_id": run_id}}


def run_config(output_url: str, config: Mapping[str, Any], resume: bool = False) -> dict:
    """The run's config with its run id, once OUTPUT, the run id and the devices are checked.

    An OUTPUT Beam cannot write to, or that is a file, raises ``ConfigError``; so does a run id that is
    taken (or, with ``resume``, a run that cannot be resumed) and a device this machine does not have.
    """
    check_output(output_url)
    config = with_run_id(config, choose_run_id(output_url, config, resume))
    check_devices(config)
    return config


def check_native_frames(config: Mapping[str, Any], reason: str) -> None:
    """Refuse frames that are not the video's own: skipped (``io.stride``), resampled (``io.fps``), resized.

    ``reason`` says why the run needs them (its scoring, or its prompts, name the video's own frames).
    """
    io = config["io"]
    if io["stride"] != 1 or io["fps"] is not None or io["max_size"] is not None:
        raise ConfigError(
            f"{reason}, so it needs io.stride=1, io.fps=null and io.max_size=null "
            f"(got {io['stride']}, {io['fps']}, {io['max_size']})"
        )


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


def check_proposals(proposals: Mapping[str, Any]) -> None:
    """``proposals.detect_every`` is a whole number of frames, 1 or more."""
    every = proposals["detect_every"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"proposals.detect_every must be a whole number of frames, 1 or more (1: every frame), "
                          f"got {every!r}")


def check_tracker(tracker_cfg: Mapping[str, Any]) -> None:
    """Build the run's tracker once here (on the CPU), so bad settings or a bad checkpoint fail before any video."""
    name = tracker_cfg["name"]
    settings = tracker_cfg.get(name)
    if isinstance(settings, Mapping) and "device" in settings:
        tracker_cfg = {**tracker_cfg, name: {**settings, "device": "cpu"}}
    build_tracker(name, tracker_cfg)


def check_scoring(scoring: Mapping[str, Any], detector: CheckpointInfo) -> None:
    """A learned tubelet score reads one detector's scores: load it now and check it is this run's detector's."""
    if scoring["checkpoint"] is None:
        return
    from tubelets.models.tubelet_scoring import check_detector, load_scorer

    check_detector(load_scorer(scoring["checkpoint"]), detector.checkpoint_id, detector.url)


def prepare_run(input_url: str, output_url: str, config: Mapping[str, Any], resume: bool = False) -> RunSpec:
    """A VIS run (``segment``, ``evaluate``): :func:`run_config`, then the checkpoints and INPUT, before any video.

    Besides :func:`run_config`'s ``ConfigError``: a bad ``proposals.detect_every`` or tracker setting raises
    ``ConfigError``; a missing, corrupt or mismatched checkpoint (detector, tracker or scorer) raises
    ``CheckpointError``; an INPUT with no video raises ``DatasetError``.
    """
    config = run_config(output_url, config, resume)
    check_proposals(config["proposals"])
    _, checkpoint = load_detector({"detector": {**config["detector"], "device": "cpu"}})
    check_tracker(config["tracker"])
    check_scoring(config["scoring"], checkpoint)
    inputs = list_inputs(input_url, config["io"]["source"])
    names = {int(c["id"]): str(c["name"]) for c in checkpoint.categories}
    return RunSpec(input_url, output_url, config["run"]["run_id"], config, checkpoint.checkpoint_id, names,
                   inputs=inputs)


def skip_finished(videos: beam.PCollection, done: frozenset) -> beam.PCollection:
    """The videos a resumed run still has to do (all of them in a new run)."""
    if not done:
        return videos
    return videos | "SkipFinished" >> beam.Filter(lambda video: video_file_stem(video.key) not in done)


def write_video_rows(tracked: beam.PCollection, dead_letters: beam.PCollection, spec: RunSpec,
                     to_rows: Callable[[tuple, str], list[dict]]) -> beam.PCollection:
    """Each video's tubelet rows to its own file, each dead letter to its own; returns ``(stem, rows, metadata)``.

    ``to_rows((meta, tubelets), run_id)`` makes a video's rows of the tubelets table.
    """
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
