"""``tubelets segment INPUT OUTPUT``: videos in, tubelets and dead letters out, as Parquet.

Graph: MatchInputs -> Decode -> Proposals (RunInference) -> GroupProposals ->
Track (class calibration + tracker) -> TubeletRows -> WriteTubelets, and
Decode's dead letters -> WriteDeadLetters. What is checked before the graph is
built is in :mod:`tubelets.pipelines.run_setup`; ``--task vos|point`` runs are
:mod:`tubelets.pipelines.vos`'s.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import apache_beam as beam

from tubelets.pipelines.arguments import parse_run_arguments
from tubelets.pipelines.lifecycle import execute
from tubelets.pipelines.options import wave_videos
from tubelets.pipelines.run_setup import RunSpec, prepare_run, skip_finished, write_video_rows
from tubelets.pipelines.vos import run_vos
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS
from tubelets.transforms.decode import META, DecodeVideo
from tubelets.transforms.inputs import MatchInputs
from tubelets.transforms.portable import SplitOutputs
from tubelets.transforms.proposals import DetectorModelHandler, ProposeInstances
from tubelets.transforms.tracking import GroupProposals, TrackVideo
from tubelets.tubelet_rows import tubelet_rows


def detector_handler(config: Mapping[str, Any]) -> DetectorModelHandler:
    """The RunInference handler of the run's detector (the pipeline tests put an oracle in its place)."""
    proposals = config["proposals"]
    return DetectorModelHandler(
        config["detector"],
        device=config["detector"]["device"],
        precision=config["detector"]["precision"],
        batch_size=proposals["batch_size"],
        torch_threads=proposals["torch_threads"],
    )


def build_tracking(p: beam.Pipeline, spec: RunSpec) -> dict[str, beam.PCollection]:
    """The shared part of segment and evaluate: inputs to tracked videos and dead letters."""
    io = spec.config["io"]
    videos = p | "MatchInputs" >> MatchInputs(spec.input_url, source=io["source"], inputs=spec.inputs or None)
    proposals_cfg = spec.config["proposals"]
    detect_every = proposals_cfg["detect_every"]
    decoder = DecodeVideo(stride=io["stride"], fps=io["fps"], max_size=io["max_size"], detect_every=detect_every,
                          frames_per_forward=proposals_cfg["frames_per_forward"])
    decoded = skip_finished(videos, spec.done) | "Decode" >> SplitOutputs(decoder, META, DEAD_LETTERS, main="frames")
    detections = decoded.frames | "Proposals" >> ProposeInstances(detector_handler(spec.config), detect_every)
    proposals = (decoded[META], detections) | "GroupProposals" >> GroupProposals(detect_every)
    tracked = proposals | "Track" >> beam.ParDo(TrackVideo(spec.config))
    return {"videos": videos, "tracked": tracked, "dead_letters": decoded[DEAD_LETTERS]}


def build_pipeline(p: beam.Pipeline, spec: RunSpec) -> dict[str, beam.PCollection]:
    """The segment graph: each video's tubelets and each dead letter to Parquet. Graph only, runs nothing."""
    outputs = build_tracking(p, spec)
    names = spec.category_names
    rows = write_video_rows(outputs["tracked"], outputs["dead_letters"], spec,
                            lambda mt, run_id: tubelet_rows(mt[1], mt[0], run_id, names))
    return {**outputs, "rows": rows}


def run(argv: Optional[Sequence[str]] = None, test_pipeline: Optional[beam.Pipeline] = None):
    """Parse ``segment`` arguments, build the graph and run it to the end; returns the run's spec.

    Raises ``TooManyFailedInputs`` when more inputs failed than ``--max-failed`` allows.
    """
    args, config, options = parse_run_arguments("segment", argv)
    if config["run"]["task"] != "vis":
        return run_vos(args, config, options, evaluate=False, test_pipeline=test_pipeline)
    spec = prepare_run(args.input, args.output, config, resume=args.resume is not None)
    spec, outcome = execute(spec, options, build_pipeline, "segment", args.argv, args.max_failed,
                            resume=args.resume is not None, test_pipeline=test_pipeline,
                            progress_every=args.progress_every, wave_videos=wave_videos(config, options))
    outcome.check()
    return spec
