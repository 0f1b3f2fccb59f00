"""Score VOS runs against a DAVIS folder's annotations inside the pipeline: J, F and J&F.

Each sequence is scored where it is (``ScoreSequence``, in parallel); one
global step turns the per-object scores into rows of the ``metrics`` table:
one overall row, one per sequence, one per object. A sequence of the data set
that has no result (its video or prompt went to dead letters) still counts,
as an empty prediction: its objects are missed, as the DAVIS tool would count
a missing sequence if it ran at all.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping, Optional

import apache_beam as beam
import numpy as np

from tubelets.errors import DatasetError
from tubelets.io.davis import DavisDataset, object_ids_in
from tubelets.metrics.davis import SequenceResult, evaluate_sequence, region_similarity, summarize
from tubelets.records import ObjectPrompt
from tubelets.tables import VOS_METRIC_NAMES, utc_now
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS, dead_letter
from tubelets.transforms.portable import GatherAll, SplitOutputs
from tubelets.transforms.vos import frame_id_maps

# summarize()'s keys -> the metrics table's columns
SUMMARY_KEYS = {"JF_mean": "J&F-Mean", "J_mean": "J-Mean", "J_recall": "J-Recall", "J_decay": "J-Decay",
                "F_mean": "F-Mean", "F_recall": "F-Recall", "F_decay": "F-Decay"}


@dataclasses.dataclass(frozen=True)
class SequenceScore:
    """One scored sequence: DAVIS scores per object, and (point runs) each object's prompt-frame IoU."""

    result: SequenceResult
    prompt_iou: Mapping[int, float]  # object id -> IoU of its prompt-frame mask with the ground truth
    num_predicted: int  # objects the run gave a mask to


class ScoreSequence(beam.DoFn):
    """``(name, {"sequence": [name], "tracked": [(meta, tubelets)], "prompts": [[ObjectPrompt]]})``
    -> ``SequenceScore``."""

    def __init__(self, dataset_url: str):
        self._dataset_url = dataset_url

    def setup(self):
        self._dataset = DavisDataset(self._dataset_url)

    def process(self, joined) -> Iterator:
        name, grouped = joined
        # An input that is not a sequence of the data set has nothing to be scored against.
        if list(grouped["sequence"]):
            try:
                yield self._score(name, list(grouped["tracked"]), [p for batch in grouped["prompts"] for p in batch])
            except DatasetError as error:
                yield dead_letter(name, "score", error)

    def _score(self, name: str, tracked: list, prompts: list[ObjectPrompt]) -> SequenceScore:
        truth = self._dataset.annotations(name)
        predicted = np.zeros_like(truth)
        tubelets = []
        if tracked:
            meta, tubelets = tracked[0]
            predicted = np.stack(list(frame_id_maps(tubelets, meta))) if meta.length else predicted
        result = evaluate_sequence(truth, predicted, object_ids_in(truth), sequence=name)
        prompt_iou = {
            p.object_id: float(region_similarity(truth[p.frame : p.frame + 1] == p.object_id,
                                                 predicted[p.frame : p.frame + 1] == p.object_id)[0])
            for p in prompts
            if p.frame < len(truth)
        }
        return SequenceScore(result, prompt_iou, len(tubelets))


def vos_metric_rows(scores: list[SequenceScore], dataset: str, tracker: str, task: str) -> list[dict]:
    """Rows of the ``metrics`` table: overall, then each sequence, then each object (sequence order); none without
    scores."""
    if not scores:
        return []
    scores = sorted(scores, key=lambda s: s.result.sequence)
    summary = summarize([s.result for s in scores])
    with_iou = task == "point"
    common = {"dataset": dataset, "tracker": tracker, "task": task, "created_at": utc_now()}
    objects = [_object_row(row, scores, with_iou) for row in summary["per_object"]]
    rows = [{
        **common, "scope": "overall", **{column: summary[key] for column, key in SUMMARY_KEYS.items()},
        "prompt_iou": _mean([row["prompt_iou"] for row in objects]) if with_iou else None,
        **_counts(scores),
    }]
    for score in scores:
        mine = [row for row in objects if row["sequence"] == score.result.sequence]
        values = {column: _mean([row[column] for row in mine]) for column in (*VOS_METRIC_NAMES, "prompt_iou")}
        values["JF_mean"] = (values["J_mean"] + values["F_mean"]) / 2
        rows.append({**common, "scope": "sequence", "sequence": score.result.sequence, **values, **_counts([score])})
    by_sequence = {score.result.sequence: score for score in scores}
    rows += [{**common, "scope": "object", **row, **_counts([by_sequence[row["sequence"]]])} for row in objects]
    return rows


def _object_row(row: Mapping, scores: list[SequenceScore], with_iou: bool) -> dict:
    score = next(s for s in scores if s.result.sequence == row["sequence"])
    values = {column: row[key] for column, key in SUMMARY_KEYS.items()}
    prompt_iou = score.prompt_iou.get(row["object_id"]) if with_iou else None
    return {"sequence": row["sequence"], "object_id": int(row["object_id"]), **values, "prompt_iou": prompt_iou}


def _counts(scores: list[SequenceScore]) -> dict[str, int]:
    return {
        "num_videos": len(scores),
        "num_gt_instances": sum(len(s.result.objects) for s in scores),
        "num_predictions": sum(s.num_predicted for s in scores),
    }


def _mean(values: list[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


class ScoreSequences(beam.PTransform):
    """The data set's sequence names, ``(name, (meta, tubelets))`` and ``(name, prompts)`` -> metrics rows."""

    def __init__(self, dataset_url: str, tracker: str, task: str):
        super().__init__()
        self._dataset_url, self._tracker, self._task = dataset_url, tracker, task

    def expand(self, inputs):
        sequences, tracked, prompts = inputs
        dataset, tracker, task = self._dataset_url, self._tracker, self._task
        scored = (
            {"sequence": sequences, "tracked": tracked, "prompts": prompts}
            | "JoinSequences" >> beam.CoGroupByKey()
            | "ScoreSequence" >> SplitOutputs(ScoreSequence(dataset), DEAD_LETTERS, main="scores")
        )
        rows = (
            scored.scores
            | "AllScores" >> GatherAll()
            | "MetricRows" >> beam.FlatMap(lambda scores: vos_metric_rows(scores, dataset, tracker, task))
        )
        return {"rows": rows, "dead_letters": scored[DEAD_LETTERS]}
