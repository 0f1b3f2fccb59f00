"""A learned tubelet score: how likely a tubelet is a true track of its class, from what the pipeline has.

The paper scores a tubelet with the mean of its frames' calibrated detector
scores. That score ranks tubelets within a frame well but across videos and
tubelet lengths poorly: with the true video IoU as the score every tracker
gains 7-12 AP on Shapes-VIS (``docs/results.md``), so the ranking, not the
masks, is where most AP is lost. A short true track and a long drift onto
clutter can have the same mean score; their lengths, how steady their masks
are and how their per-frame scores are spread tell them apart.

:func:`entry_features` describes one results entry (a tubelet under its own
class, or under one of its other classes) by statistics that mean the same on
any footage: its score, the spread of its frame scores, its share of the
video, the size and steadiness of its masks, and its other classes. A
:class:`TubeletScorer` (a logistic regression over the standardised features)
maps them to the probability that the entry matches a ground-truth track of its
class at video IoU 0.5, and :func:`rescore` puts that probability in place of
the entry's score. It is trained by :mod:`tubelets.models.train_scorer` on the
tubelets of evaluate runs made without it, and it belongs to the detector whose
scores it read: loading it with another detector is a ``CheckpointError``.

Checkpoint (``torch.save``d dict, ``weights_only=True``-readable)::

    format          "tubelets.scorer/1"
    features        the feature names, in order (checked against FEATURES on load)
    model           {"mean", "std", "weight", "bias"} float32 tensors
    detector        {"checkpoint_id", "url"}: the detector whose scores it was trained on
    trained_on      [{"dataset", "run", "tracker", "entries", "positives"}, ...]
    metrics         AP of the training runs before and after (see train_scorer)
    checkpoint_id   first 16 hex digits of the sha256 of the model tensors
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from tubelets import masks
from tubelets.errors import CheckpointError
from tubelets.models.checkpoints import check_same_detector, read_own_checkpoint, weights_id
from tubelets.records import Tubelet

FORMAT = "tubelets.scorer/1"
FEATURES = (
    "entry_score",  # the score the entry has now: the tubelet's mean frame score, or its other class's score
    "frame_score_mean", "frame_score_max", "frame_score_min", "frame_score_std", "frame_score_q75",
    "share_frames_above_0.5", "share_frames_above_0.8",
    "share_of_video",  # frames with a mask / frames in the video
    "span_of_video",  # (last - first + 1) / frames in the video
    "density",  # frames with a mask / span: gaps in the track
    "log_frames",
    "log_mean_area_share",  # mean mask area as a share of the frame, log
    "log_area_std",  # how much the mask's size changes over the track
    "log_area_step",  # mean change of log area from one mask to the next: jitter
    "is_other_class",  # the entry is one of the tubelet's other classes
    "other_classes",  # how many other classes the tubelet competes under
    "best_other_score",
)


def entry_features(tubelet: Tubelet, video_length: int) -> np.ndarray:
    """``float64 [1 + len(other_classes), len(FEATURES)]``: the tubelet's own entry, then one per other class."""
    scores = np.array([item.score for item in tubelet.frames], dtype=np.float64)
    frame_numbers = np.array([item.frame for item in tubelet.frames])
    first = tubelet.frames[0].mask["size"]
    areas = np.array([masks.area(item.mask) for item in tubelet.frames], dtype=np.float64)
    log_areas = np.log(areas + 1.0)
    span = int(frame_numbers.max() - frame_numbers.min() + 1)
    other_scores = [score for _, score in tubelet.other_classes]
    shared = [
        scores.mean(), scores.max(), scores.min(), scores.std(), np.quantile(scores, 0.75),
        (scores >= 0.5).mean(), (scores >= 0.8).mean(),
        len(scores) / video_length, span / video_length, len(scores) / span, np.log(len(scores)),
        np.log(areas.mean() / (first[0] * first[1]) + 1e-6), log_areas.std(),
        np.abs(np.diff(log_areas)).mean() if len(log_areas) > 1 else 0.0,
    ]
    tail = [len(other_scores), max(other_scores, default=0.0)]
    rows = [[tubelet.score, *shared, 0.0, *tail]]
    rows += [[score, *shared, 1.0, *tail] for score in other_scores]
    return np.asarray(rows, dtype=np.float64)


class TubeletScorer(torch.nn.Module):
    """Logistic regression over standardised :data:`FEATURES`: the probability that an entry is a true track."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.linear = torch.nn.Linear(len(FEATURES), 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``[N]`` of features ``[N, len(FEATURES)]``."""
        return self.linear((features.float() - self.mean) / self.std).squeeze(1)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(self(torch.from_numpy(features))).double().numpy()

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores, in our own names (stable across torch versions)."""
        return {"mean": self.mean.clone(), "std": self.std.clone(),
                "weight": self.linear.weight.detach().clone().reshape(-1),
                "bias": self.linear.bias.detach().clone()}

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor]) -> "TubeletScorer":
        scorer = cls(state["mean"], state["std"])
        with torch.no_grad():
            scorer.linear.weight.copy_(state["weight"].float().reshape(1, -1))
            scorer.linear.bias.copy_(state["bias"].float())
        return scorer.eval()


@dataclasses.dataclass(frozen=True)
class LoadedScorer:
    """A scorer and what it was trained against."""

    model: TubeletScorer
    url: str
    checkpoint_id: str
    detector_checkpoint_id: str
    detector_url: Optional[str]


def make_scorer_checkpoint(scorer: TubeletScorer, *, detector: Mapping[str, Any], trained_on: Sequence[Mapping],
                           metrics: Mapping[str, Any]) -> dict:
    """The checkpoint dict of ``scorer`` (see the module docstring)."""
    state = scorer.state()
    return {"format": FORMAT, "features": list(FEATURES), "model": state,
            "detector": {"checkpoint_id": str(detector["checkpoint_id"]), "url": detector.get("url")},
            "trained_on": [dict(item) for item in trained_on], "metrics": dict(metrics),
            "checkpoint_id": weights_id(state)}


def load_scorer(url: str) -> LoadedScorer:
    """The scorer at ``url`` (fsspec URL or ``builtin:NAME``); ``CheckpointError`` naming what is wrong."""
    checkpoint = read_own_checkpoint(url, FORMAT, "scorer", ("features", "detector"))
    if tuple(checkpoint["features"]) != FEATURES:
        raise CheckpointError(f"scorer checkpoint {url!r} was trained on other features "
                              f"({len(checkpoint['features'])}, this version has {len(FEATURES)}): train it again")
    detector = checkpoint["detector"]
    return LoadedScorer(TubeletScorer.from_state(checkpoint["model"]), url, checkpoint["checkpoint_id"],
                        detector["checkpoint_id"], detector.get("url"))


def scorer_from_config(scoring: Mapping[str, Any]) -> Optional[TubeletScorer]:
    """The ``scoring:`` section's scorer, or None when ``scoring.checkpoint`` is null (the mean detector score)."""
    return None if scoring["checkpoint"] is None else load_scorer(scoring["checkpoint"]).model


def check_detector(scorer: LoadedScorer, detector_checkpoint_id: str, detector_url: Optional[str]) -> None:
    """The scorer read the scores of one detector; another detector's scores mean something else."""
    check_same_detector(f"scorer checkpoint {scorer.url!r} ({scorer.checkpoint_id})", "scores",
                        (scorer.detector_checkpoint_id, scorer.detector_url), (detector_checkpoint_id, detector_url),
                        "train a scorer for this detector (tubelets train scorer), or set scoring.checkpoint=null")


def rescore(tubelets: Sequence[Tubelet], video_length: int, scorer: TubeletScorer) -> list[Tubelet]:
    """``tubelets`` with each entry's score (own class and other classes) replaced by the scorer's probability."""
    rescored = []
    for tubelet in tubelets:
        # One call a tubelet, not one a video: torch's float32 matmul and sigmoid kernels depend on the row count,
        # so stacking the video's rows moves probabilities by an ulp or so and with them the results' bytes.
        probabilities = scorer.probabilities(entry_features(tubelet, video_length))
        others = [(category, float(p)) for (category, _), p in zip(tubelet.other_classes, probabilities[1:])]
        rescored.append(dataclasses.replace(tubelet, score=float(probabilities[0]), other_classes=others))
    return rescored
