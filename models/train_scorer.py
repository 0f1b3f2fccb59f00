"""Training the learned tubelet score (:mod:`tubelets.models.tubelet_scoring`) on labelled evaluate runs.

Each training pair is a labelled data set and a complete ``tubelets evaluate``
run on it made with ``scoring.checkpoint: null``, so that the entries carry
the scores the scorer will see at run time (the mean calibrated detector
score). Every results entry of the run (a tubelet under its own class and
under each of its other classes) is an example: its :func:`entry_features`,
and as target whether it matches a ground-truth track of its class in its
video at video IoU 0.5 or more, the threshold of AP50 and the middle of the
AP range. The fit is a logistic regression with an L2 penalty, full batch
with L-BFGS: deterministic, seconds on a CPU for thousands of entries.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from tubelets import runs
from tubelets.errors import ConfigError
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.metrics.vis import evaluate, load_json
from tubelets.metrics.vis_data import index_ground_truth
from tubelets.metrics.vis_iou import video_iou
from tubelets.metrics.vis_tracks import ground_truth_tracks, prediction_tracks
from tubelets.models.checkpoints import write_checkpoint
from tubelets.models.tubelet_scoring import TubeletScorer, entry_features, make_scorer_checkpoint
from tubelets.tables import read_table
from tubelets.tubelet_rows import results_from_rows, tubelet_from_row

MATCH_IOU = 0.5  # an entry is a true track of its class at this video IoU or more
L2 = 1e-3  # penalty on the standardised weights: 18 features, thousands of entries, so it only steadies the fit


def run_examples(dataset_url: str, run_folder: str) -> tuple[np.ndarray, np.ndarray, list[dict], dict, dict]:
    """Features ``[E, F]``, best same-class video IoU ``[E]``, the results entries, the ground truth, the manifest."""
    manifest = _training_run(run_folder)
    gt = load_json(YouTubeVISDataset(dataset_url).annotations_url, "ground truth")
    rows = read_table(run_folder, "tubelets").to_pylist()
    by_video: dict[Any, list[dict]] = defaultdict(list)
    for row in rows:
        by_video[row["video_id"]].append(row)
    index = index_ground_truth(gt, dataset_url)
    features, ious, entries = [], [], []
    for video_id in sorted(by_video):
        video_rows = by_video[video_id]
        video_entries = results_from_rows(video_rows)  # each row's own entry, then its other classes, row by row
        features += [entry_features(tubelet_from_row(row), int(row["video_length"])) for row in video_rows]
        annotations = index.annotations_by_video.get(video_id, [])
        if annotations:
            video = index.videos[video_id]
            ious.append(video_iou(prediction_tracks(video_entries, video, run_folder),
                                  ground_truth_tracks(annotations, video, dataset_url), video_id).max(axis=1))
        else:
            ious.append(np.zeros(len(video_entries)))
        entries += video_entries
    if not entries:
        raise ConfigError(f"run {run_folder} has no tubelets to train a scorer on")
    return np.concatenate(features), np.concatenate(ious), entries, gt, manifest


def _training_run(run_folder: str) -> dict:
    output_url, run_id = run_folder.rstrip("/").rsplit("/", 1)
    manifest = runs.read_manifest(output_url, run_id)
    if manifest is None or manifest.get("status") != "complete" or manifest.get("command") != "evaluate":
        raise ConfigError(f"{run_folder} is not a complete `tubelets evaluate` run: a scorer trains on labelled runs")
    if manifest["config"].get("scoring", {}).get("checkpoint") is not None:
        raise ConfigError(f"run {run_folder} was scored by {manifest['config']['scoring']['checkpoint']}: train on "
                          "runs made with --set scoring.checkpoint=null, whose scores are the detector's")
    return manifest


def fit_scorer(features: np.ndarray, targets: np.ndarray) -> TubeletScorer:
    """A logistic regression of ``targets`` (0/1) on ``features``, standardised by their mean and spread.

    Nothing in it is random (zero start, full batch), so the same examples give the same weights.
    """
    x = torch.from_numpy(features).float()
    y = torch.from_numpy(targets).float()
    mean, std = x.mean(0), x.std(0)
    scorer = TubeletScorer(mean, torch.where(std > 1e-6, std, torch.ones_like(std)))
    torch.nn.init.zeros_(scorer.linear.weight)
    torch.nn.init.zeros_(scorer.linear.bias)
    optimizer = torch.optim.LBFGS(scorer.linear.parameters(), max_iter=500, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(scorer(x), y)
        value = value + L2 * scorer.linear.weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return scorer.eval()


def train_scorer(pairs: Sequence[tuple[str, str]], out_url: str) -> dict:
    """Fit a scorer on ``(dataset_url, run_folder)`` pairs, write it to ``out_url``; its AP before and after."""
    examples = [run_examples(dataset, run) for dataset, run in pairs]
    detectors = {manifest["checkpoint_id"] for *_, manifest in examples}
    if len(detectors) != 1:
        raise ConfigError(f"the training runs used different detectors {sorted(detectors)}: a scorer reads one "
                          "detector's scores")
    features = np.concatenate([example[0] for example in examples])
    targets = (np.concatenate([example[1] for example in examples]) >= MATCH_IOU).astype(np.float64)
    scorer = fit_scorer(features, targets)
    metrics: dict[str, Any] = {"runs": []}
    trained_on = []
    for (dataset, run), (run_features, ious, entries, gt, manifest) in zip(pairs, examples):
        rescored = [{**entry, "score": float(p)} for entry, p in zip(entries, scorer.probabilities(run_features))]
        metrics["runs"].append({"run": run, "AP_before": evaluate(gt, entries).stats["AP"],
                                "AP_after": evaluate(gt, rescored).stats["AP"]})
        trained_on.append({"dataset": dataset, "run": run, "tracker": manifest["config"]["tracker"]["name"],
                           "entries": len(entries), "positives": int((ious >= MATCH_IOU).sum())})
    manifest = examples[0][4]
    detector = {"checkpoint_id": manifest["checkpoint_id"], "url": manifest["config"]["detector"]["checkpoint"]}
    checkpoint = make_scorer_checkpoint(scorer, detector=detector, trained_on=trained_on, metrics=metrics)
    write_checkpoint(out_url, checkpoint)
    return {"checkpoint_id": checkpoint["checkpoint_id"], "entries": int(len(targets)),
            "positives": int(targets.sum()), **metrics}


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """What ``tubelets train scorer`` prints."""
    lines = [f"scorer {result['checkpoint_id']}: {result['entries']} entries, {result['positives']} true tracks"]
    lines += [f"  {item['run']}: AP {100 * item['AP_before']:.1f} -> {100 * item['AP_after']:.1f} (training data)"
              for item in result["runs"]]
    return lines
