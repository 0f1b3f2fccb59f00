"""What the pipeline costs over the work it does: Beam runs against bare loops over the same frames, in one run.

1. proposals: decode -> proposals as one real Beam pipeline (the pipeline's own
   ``MatchInputs -> Decode -> Proposals`` transforms, wired and configured as
   ``tubelets segment`` wires them) against a bare loop over the same videos in
   this process: the pipeline's decoder (``input_frames`` with the ``io:``
   settings: a video file decoded, or a data set's JPEG frames read, as
   ``DecodeVideo`` reads them) and the pipeline's model handler (its
   ``load_model``, so the same model and torch threads, and its chunks,
   ``proposals.frames_per_forward`` frames a forward pass, through
   ``video_detections``).
2. end to end: ``tubelets segment INPUT OUTPUT --config shapes-vis`` as a user
   runs it (a process of its own: start-up, launch checks, every stage, the
   Parquet files) against the sum of the bare stages: decode, detect, track
   (:func:`tubelets.models.video_tracking.track_video` with the configured
   tracker, on the frames decoded once), write (each video's tubelet rows to a
   Parquet file).

Each Beam side runs in memory (``--direct_running_mode=in_memory``) and with
``--workers`` worker processes (``multi_processing``); the bare stages run once
and are shared by both comparisons. Each row has its wall time and its CPU time
(this process's and its child processes'; on a shared machine the steadier
number); the ratios are Beam / bare (1.00: no overhead). The proposals and
tubelets columns check that both sides did the same work. Prints one markdown
table::

    .venv/bin/python benchmarks/pipeline_bench.py [INPUT] [--modes in_memory,multi_processing] [--workers 1]
        [--work DIR] [--set KEY=VALUE ...]

INPUT is a YouTube-VIS data set folder or a glob of video files (default: the
repository's ``sample-data``, 6 Shapes-VIS videos, generated as ``tubelets
demo`` does when missing). ``--set`` overrides go to both sides.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import apache_beam as beam
import numpy as np
from shapes_vis import PRESET, TUBELETS, as_set_args, workers_label

from tubelets import tables
from tubelets.config import load_config
from tubelets.models.loading import load_detector
from tubelets.models.trackers import build_tracker
from tubelets.models.tubelet_scoring import scorer_from_config
from tubelets.models.video_tracking import track_video
from tubelets.pipelines.options import pipeline_options
from tubelets.pipelines.segment import detector_handler
from tubelets.records import FrameDetections, VideoMeta
from tubelets.runs import video_file_stem
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS
from tubelets.transforms.decode import META, DecodeVideo, input_frames, open_dataset, video_meta
from tubelets.transforms.inputs import MatchInputs, VideoInput, expand_input
from tubelets.transforms.portable import SplitOutputs
from tubelets.transforms.proposals import ProposeInstances, video_detections
from tubelets.transforms.tracking import assemble_video
from tubelets.tubelet_rows import tubelet_rows

SAMPLE = Path(__file__).resolve().parents[1] / "sample-data"
MODES = ("in_memory", "multi_processing")
BENCH_RUN_ID = "pipeline-bench"  # the run id the bare write stage puts in its rows


@dataclasses.dataclass(frozen=True)
class Cost:
    """Wall seconds, and CPU seconds of this process and of the child processes it waited for.

    On a shared machine the wall time of either side grows with what else runs; CPU time is the
    steadier number (a worker process's counts once the runner has ended it, a command's with its own).
    """

    wall: float
    cpu: float

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.wall + other.wall, self.cpu + other.cpu)


@dataclasses.dataclass
class Row:
    """One line of the table: what ran, on how many frames, what it gave, and what it cost."""

    stage: str
    frames: int
    cost: Cost
    proposals: int | None = None
    tubelets: int | None = None
    baseline: Cost | None = None  # the bare stages' cost this row is compared with
    note: str = ""

    def cells(self) -> list[str]:
        ratios = ["", ""]
        if self.baseline:
            ratios = [f"{self.cost.wall / self.baseline.wall:.2f}", f"{self.cost.cpu / self.baseline.cpu:.2f}"]
        counts = ["" if value is None else str(value) for value in (self.proposals, self.tubelets)]
        return [self.stage, str(self.frames), *counts, f"{self.cost.wall:.1f}", f"{self.cost.cpu:.1f}",
                f"{self.frames / self.cost.wall:.1f}", *ratios, self.note]


HEADER = ["stage", "frames", "proposals", "tubelets", "wall s", "CPU s", "frames/s", "ratio", "CPU ratio", ""]


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run: Callable):
    """``(Cost, run())``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = run()
    return Cost(time.perf_counter() - wall, cpu_seconds() - cpu), value


# ---- the bare stages: the project's functions, no Beam ---------------------------------------------------


@dataclasses.dataclass
class Decoded:
    """One video as the bare loop holds it: its VideoMeta (as DecodeVideo makes it) and every decoded frame."""

    meta: VideoMeta
    frames: list[np.ndarray]


def decode(inputs: list[VideoInput], io: dict) -> list[Decoded]:
    """Every video's frames, read as the pipeline's DecodeVideo reads them (a video file, a data set's JPEGs or
    DAVIS sequence: each data set parsed once)."""
    decoded, datasets = [], {}
    for item in inputs:
        if (item.source, item.url) not in datasets:
            datasets[(item.source, item.url)] = open_dataset(item)
        pairs = list(input_frames(item, stride=io["stride"], fps=io["fps"], max_size=io["max_size"],
                                  dataset=datasets[(item.source, item.url)]))
        frames = [frame for _, frame in pairs]
        decoded.append(Decoded(video_meta(item, [index for index, _ in pairs], frames[0].shape), frames))
    return decoded


def detect(videos: list[Decoded], config: dict) -> list[list[FrameDetections]]:
    """Each video's detections of the frames the pipeline detects, by its model handler (model loading included)."""
    proposals = config["proposals"]
    detector = detector_handler(config).load_model()
    return [video_detections(detector, video.frames, proposals["detect_every"], proposals["frames_per_forward"])
            for video in videos]


def track(videos: list[Decoded], detections: list[list[FrameDetections]], config: dict) -> list[list]:
    """Each video's tubelets: assembled as GroupProposals does, tracked by track_video (tracker building included)."""
    tracker, every = build_tracker(None, config["tracker"]), config["proposals"]["detect_every"]
    scorer = scorer_from_config(config["scoring"])
    tubelets = []
    for video, found in zip(videos, detections):
        (proposals,) = assemble_video((video.meta.key, {"meta": [video.meta], "frames": found}), every)
        tubelets.append(track_video(proposals, video.frames, tracker, config["calibration"], scorer).tubelets)
    return tubelets


def write(videos: list[Decoded], tubelets: list[list], names: dict[int, str], folder: Path) -> None:
    """Each video's tubelet rows to a Parquet file of its own, with the pipeline's schema."""
    schema = tables.with_provenance(tables.TABLES["tubelets"], BENCH_RUN_ID)
    for video, found in zip(videos, tubelets):
        rows = tubelet_rows(found, video.meta, BENCH_RUN_ID, names)
        tables.write_parquet(tables.to_arrow(rows, schema), str(folder / f"{video_file_stem(video.meta.key)}.parquet"))


# ---- the Beam side ----------------------------------------------------------------------------------------


def mode_flags(mode: str, workers: int) -> list[str]:
    """The DirectRunner flags of a running mode."""
    flags = ["--runner=DirectRunner", f"--direct_running_mode={mode}"]
    return flags + ([f"--direct_num_workers={workers}"] if mode != "in_memory" else [])


def beam_proposals(input_url: str, inputs: list[VideoInput], config: dict, flags: list[str], folder: Path) -> int:
    """MatchInputs -> Decode -> Proposals as ``tubelets segment`` builds them, run to the end; the proposals made."""
    io, every = config["io"], config["proposals"]["detect_every"]
    total = folder / "proposals.txt"
    with beam.Pipeline(options=pipeline_options(flags)) as p:
        videos = p | "MatchInputs" >> MatchInputs(input_url, source=io["source"], inputs=inputs)
        decoder = DecodeVideo(stride=io["stride"], fps=io["fps"], max_size=io["max_size"], detect_every=every,
                              frames_per_forward=config["proposals"]["frames_per_forward"])
        decoded = videos | "Decode" >> SplitOutputs(decoder, META, DEAD_LETTERS, main="frames")
        detections = decoded.frames | "Proposals" >> ProposeInstances(detector_handler(config), every)
        # Lambdas: a worker process unpickles them by value, also when this module was imported by name.
        _ = (detections | "Sizes" >> beam.Map(lambda keyed: len(keyed[1])) | "Total" >> beam.CombineGlobally(sum)
             | "Keep" >> beam.Map(lambda count, path=str(total): Path(path).write_text(str(count))))
    return int(total.read_text())


SUMMARY = re.compile(r"run \S+: .* in ([0-9.]+)s")


def segment(input_url: str, output: Path, run_id: str, overrides: list[str], flags: list[str]) -> tuple[int, str]:
    """``tubelets segment`` in a process of its own; the tubelets it wrote and the run time it reported."""
    command = [*TUBELETS, "segment", input_url, str(output), "--config", PRESET, "--run-id", run_id,
               "--progress-every", "0", *as_set_args(overrides), *flags]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"tubelets segment exited {done.returncode}")
    reported = SUMMARY.search(done.stderr)
    note = f"the run itself {float(reported.group(1)):.1f} s" if reported else ""
    return tables.read_table(str(output), "tubelets", run_id).num_rows, note


# ---- the run ----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", default=None, help="a YouTube-VIS folder or a glob (default: sample-data)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {','.join(MODES)}")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of multi_processing (default 1, "
                        "as the bare loop's one process)")
    parser.add_argument("--work", default=None, help="folder for the outputs (default: a temporary one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for both sides (repeatable)")
    args = parser.parse_args(argv)
    args.modes = [mode for mode in args.modes.split(",") if mode]
    unknown = sorted(set(args.modes) - set(MODES))
    if unknown:
        parser.error(f"unknown --modes {unknown}; known: {','.join(MODES)}")
    return args


def input_url(given: str | None) -> str:
    """INPUT, or the sample data (generated as ``tubelets demo`` generates it, when missing)."""
    if given:
        return given
    from tubelets.demo import ensure_sample

    ensure_sample(str(SAMPLE))
    return str(SAMPLE)


def warm_up(inputs: list[VideoInput], config: dict) -> None:
    """The first video decoded and its first frame detected, untimed: the process's first-use costs (the file
    cache, torch's first kernels) would otherwise fall on whichever side runs first."""
    (video,) = decode(inputs[:1], config["io"])
    detect([Decoded(video.meta, video.frames[:1])], config)


def bare_rows(inputs: list[VideoInput], config: dict, folder: Path) -> tuple[list[Row], Row, Row]:
    """Each bare stage's row, and the two sums: decode + detect, and all four stages."""
    warm_up(inputs, config)
    cost_decode, videos = timed(lambda: decode(inputs, config["io"]))
    cost_detect, detections = timed(lambda: detect(videos, config))
    cost_track, tubelets = timed(lambda: track(videos, detections, config))
    _, checkpoint = load_detector({"detector": {**config["detector"], "device": "cpu"}})
    names = {int(c["id"]): str(c["name"]) for c in checkpoint.categories}
    cost_write, _ = timed(lambda: write(videos, tubelets, names, folder))
    frames = sum(video.meta.length for video in videos)
    proposals, found = sum(len(d) for each in detections for d in each), sum(len(each) for each in tubelets)
    tracker = config["tracker"]["name"]
    stages = [Row("bare: decode (input_frames)", frames, cost_decode),
              Row("bare: detect (the model handler, model loading included)", frames, cost_detect, proposals),
              Row(f"bare: track ({tracker}, track_video, tracker building included)", frames, cost_track,
                  tubelets=found),
              Row("bare: write (tubelet rows to Parquet)", frames, cost_write, tubelets=found)]
    proposal_part = Row("bare: decode + detect", frames, cost_decode + cost_detect, proposals)
    whole = Row("bare: decode + detect + track + write", frames, cost_decode + cost_detect + cost_track + cost_write,
                tubelets=found)
    proposal_part.baseline, whole.baseline = proposal_part.cost, whole.cost  # each the 1.00 of its Beam rows
    return stages, proposal_part, whole


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    url = input_url(args.input)
    config = load_config(PRESET, args.overrides)
    inputs = expand_input(url, config["io"]["source"])
    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work, prefix="pipeline-bench-") as work:
        work = Path(work)
        (work / "bare").mkdir()
        stages, proposal_part, whole = bare_rows(inputs, config, work / "bare")
        proposal_rows, segment_rows = [proposal_part], [whole]
        for mode in args.modes:
            flags, name = mode_flags(mode, args.workers), workers_label(0 if mode == "in_memory" else args.workers)
            (work / mode).mkdir()
            cost, proposals = timed(lambda: beam_proposals(url, inputs, config, flags, work / mode))
            proposal_rows.append(Row(f"Beam: MatchInputs -> Decode -> Proposals, {name}", proposal_part.frames,
                                     cost, proposals, baseline=proposal_part.cost))
            cost, (found, note) = timed(lambda: segment(url, work / "out", mode, args.overrides, flags))
            segment_rows.append(Row(f"tubelets segment, {name}", whole.frames, cost, tubelets=found,
                                    baseline=whole.cost, note=note))
    print(f"{url}: {len(inputs)} videos, tracker {config['tracker']['name']}, "
          f"{config['proposals']['torch_threads']} torch thread(s) a process, config {PRESET}")
    print(table([*stages, *proposal_rows, *segment_rows]))


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return "\n".join(lines + ["| " + " | ".join(row.cells()) + " |" for row in rows])


if __name__ == "__main__":
    main()
