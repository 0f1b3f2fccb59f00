"""Video object segmentation runs: ``segment --task vos|point`` and ``evaluate --task vos|point``.

``tubelets segment --task vos INPUT OUTPUT --prompts PROMPTS`` follows the
objects PROMPTS marks (masks; ``--task point``: clicks) through INPUT's
videos. Graph: MatchInputs -> Decode (meta only: a corrupt video is caught
here) -> PairPrompts (CoGroupByKey by video name) -> SegmentObjects ->
tubelets table + DAVIS palette PNGs (``OUTPUT/<run_id>/Annotations/480p/<video>/``),
and every failure (a video that does not decode, prompts naming no input, an
input without prompts, a prompt that does not fit its video) -> dead_letters.

``tubelets evaluate --task vos DAVIS OUTPUT`` runs the same on a DAVIS folder
and scores it (J, F, J&F; :mod:`tubelets.transforms.vos_evaluation`). Without
``--prompts`` the prompts come from the folder's annotations: each object's
mask (``vos``) or the interior point farthest from its boundary (``point``)
on the first frame it appears in.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Mapping, Optional

import apache_beam as beam

from tubelets import masks
from tubelets.errors import ConfigError, DatasetError
from tubelets.io.davis import DavisDataset
from tubelets.io.prompts import (Prompts, farthest_interior_point, prompts_from_annotations, read_prompts,
                                 video_name_from_url)
from tubelets.pipelines.lifecycle import execute
from tubelets.pipelines.run_setup import (RunSpec, check_native_frames, list_inputs, run_config, skip_finished,
                                         write_video_rows)
from tubelets.records import ObjectPrompt
from tubelets.runs import video_file_stem
from tubelets.tables import read_table
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS
from tubelets.transforms.decode import META, DecodeVideo
from tubelets.transforms.inputs import MatchInputs, is_davis
from tubelets.transforms.outputs import WriteTable
from tubelets.transforms.portable import SplitOutputs
from tubelets.transforms.vos import (
    OBJECT_CATEGORY, PairPrompts, SegmentObjects, WriteAnnotations, build_segmenter, video_name,
)
from tubelets.transforms.vos_evaluation import ScoreSequences
from tubelets.tubelet_rows import tubelet_rows

VOS_TASKS = ("vos", "point")
TRACKER_NAME = "ipdt"  # the pixel level with the instance-level check, on the tracker checkpoint


@dataclasses.dataclass(frozen=True)
class VosRunSpec(RunSpec):
    """A :class:`RunSpec` with the run's prompts; the objects have no category (:data:`OBJECT_CATEGORY`)."""

    prompts: Prompts = dataclasses.field(default_factory=dict)
    evaluate: bool = False

    @property
    def task(self) -> str:
        return self.config["run"]["task"]

    @property
    def provenance(self) -> dict[str, str]:
        return {**super().provenance, "tracker": TRACKER_NAME}


def load_prompts(input_url: str, config: Mapping[str, Any]) -> Prompts:
    """The run's prompts: ``vos.prompts``, or the DAVIS INPUT's annotations; points for ``--task point``.

    A mask prompt in a ``point`` run becomes its farthest interior point (how
    evaluation clicks); a point prompt in a ``vos`` run is a ``ConfigError``.
    """
    task, url = config["run"]["task"], config["vos"]["prompts"]
    if url is None:
        if not is_davis(input_url):
            raise ConfigError(f"--task {task} needs --prompts (vos.prompts) unless INPUT is a DAVIS folder "
                              f"with annotations; {input_url!r} is not one")
        return prompts_from_annotations(DavisDataset(input_url), kind="point" if task == "point" else "mask")
    prompts = read_prompts(url)
    if task == "point":
        return {video: [as_point(p) for p in items] for video, items in prompts.items()}
    clicks = [f"{p.video}/{p.object_id}" for items in prompts.values() for p in items if p.mask is None]
    if clicks:
        raise ConfigError(f"{url} gives points (e.g. {clicks[:3]}): run them with --task point")
    return prompts


def as_point(prompt: ObjectPrompt) -> ObjectPrompt:
    """A point prompt at the mask's farthest interior point (a point prompt as it is)."""
    if prompt.mask is None:
        return prompt
    return dataclasses.replace(prompt, mask=None, point=farthest_interior_point(masks.decode(prompt.mask)))


def prepare_vos_run(input_url: str, output_url: str, config: Mapping[str, Any], evaluate: bool = False,
                    resume: bool = False) -> VosRunSpec:
    """Check the config, OUTPUT, the run id, INPUT, the tracker checkpoint and the prompts before any video is read."""
    # Prompts name frames of the video as it is, so frames are neither skipped, resampled nor resized.
    check_native_frames(config, f"--task {config['run']['task']} follows prompts given on the video's own frames")
    if evaluate and resume:
        # The DAVIS scores need every sequence's tracked objects in one pass; a VOS evaluation is small: rerun it.
        raise ConfigError(f"--resume is not available for evaluate --task {config['run']['task']}: start a new run")
    config = run_config(output_url, config, resume)
    segmenter = build_segmenter({**config["vos"], "device": "cpu"})
    if evaluate and not is_davis(input_url):
        raise DatasetError(f"evaluate --task {config['run']['task']} scores a DAVIS folder "
                           f"(JPEGImages/480p/, Annotations/480p/); {input_url!r} is not one")
    inputs = list_inputs(input_url, config["io"]["source"])
    prompts = load_prompts(input_url, config)
    return VosRunSpec(input_url, output_url, config["run"]["run_id"], config, segmenter.info.checkpoint_id,
                      OBJECT_CATEGORY, inputs=inputs, prompts=prompts, evaluate=evaluate)


def build_pipeline(p: beam.Pipeline, spec: VosRunSpec) -> dict[str, beam.PCollection]:
    """The VOS graph (see the module docstring). Graph only, runs nothing."""
    listed = MatchInputs(spec.input_url, source=spec.config["io"]["source"], inputs=spec.inputs or None)
    videos = skip_finished(p | "MatchInputs" >> listed, spec.done)
    native = DecodeVideo(stride=1, fps=None, max_size=None, emit_frames=False)  # prompts are on native frames
    decoded = videos | "Decode" >> SplitOutputs(native, META, DEAD_LETTERS, main="frames")
    # A resumed run's finished videos keep their prompts out, or they would be dead letters with no input.
    finished = {video_name_from_url(key) for key in spec.input_keys if video_file_stem(key) in spec.done}
    prompts = p | "Prompts" >> beam.Create(sorted(item for item in spec.prompts.items() if item[0] not in finished))
    paired = (videos, decoded[META], prompts) | "PairPrompts" >> PairPrompts()
    segmenter = SegmentObjects(spec.config["vos"], torch_threads=spec.config["proposals"]["torch_threads"])
    segmented = paired.videos | "Segment" >> SplitOutputs(segmenter, DEAD_LETTERS, main="tracked")
    run_id = spec.run_id
    segmented.tracked | "WriteAnnotations" >> beam.ParDo(WriteAnnotations(spec.run_url))
    failures = [decoded[DEAD_LETTERS], paired[DEAD_LETTERS], segmented[DEAD_LETTERS]]
    outputs = {"videos": videos, "tracked": segmented.tracked}
    if spec.evaluate:
        sequences = p | "Sequences" >> beam.Create([(name, name) for name in DavisDataset(spec.input_url).sequences()])
        tracked = segmented.tracked | "TrackedByName" >> beam.Map(lambda mt: (video_name(mt[0]), mt))
        scored = (sequences, tracked, prompts) | "Score" >> ScoreSequences(spec.input_url, TRACKER_NAME, spec.task)
        scored["rows"] | "WriteMetrics" >> WriteTable(spec.output_url, run_id, "metrics", spec.provenance)
        failures.append(scored["dead_letters"])
        outputs["metrics"] = scored["rows"]
    dead = failures | "AllDeadLetters" >> beam.Flatten()
    write_video_rows(segmented.tracked, dead, spec,
                     lambda mt, run_id: tubelet_rows(mt[1], mt[0], run_id, OBJECT_CATEGORY))
    return {**outputs, "dead_letters": dead}


def vos_headline(rows: list[dict]) -> str:
    """One line with the overall J&F, J, F (and, point runs, the prompt IoU), in %."""
    overall = next((r for r in rows if r["scope"] == "overall"), None)
    if overall is None:
        return "no sequence was scored"
    keys = ("JF_mean", "J_mean", "F_mean") + (("prompt_iou",) if overall["prompt_iou"] is not None else ())
    return "  ".join(f"{key} {overall[key] * 100:.1f}" for key in keys)


def run_vos(args, config: Mapping[str, Any], options, evaluate: bool = False,
            test_pipeline: Optional[beam.Pipeline] = None) -> VosRunSpec:
    """Run a parsed ``segment``/``evaluate`` command whose ``run.task`` is ``vos`` or ``point``."""
    resume = args.resume is not None
    spec = prepare_vos_run(args.input, args.output, config, evaluate, resume=resume)
    command = "evaluate" if evaluate else "segment"
    spec, outcome = execute(spec, options, build_pipeline, command, args.argv, args.max_failed, resume=resume,
                            test_pipeline=test_pipeline, progress_every=args.progress_every)
    if evaluate:
        rows = read_table(spec.output_url, "metrics", spec.run_id).to_pylist()
        print(f"{spec.task}: {vos_headline(rows)}", file=sys.stderr)
    print(f"masks: {spec.run_url}/Annotations/480p/", file=sys.stderr)
    outcome.check()
    return spec
