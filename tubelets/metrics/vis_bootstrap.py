"""Is one result set's AP really above another's? A paired bootstrap over videos.

AP differences of 1-2 points between trackers on a 20-video set can be
chance: a handful of videos decide them. :func:`paired_bootstrap` resamples
the set's videos with replacement, scores both result sets on every resample
(the same videos for both, so what the two share cancels out) and reports the
observed difference, its 95 % percentile interval and how often the first set
won. Each video is matched once (:func:`tubelets.metrics.vis.match_videos`);
a resample only re-accumulates, so a thousand resamples take seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from tubelets.metrics.vis import VideoMatches, accumulate, match_videos


@dataclasses.dataclass(frozen=True)
class BootstrapDifference:
    """``metric(a) - metric(b)`` on the whole set, and over ``samples`` resamples of its videos."""

    metric: str
    observed: float
    low: float  # 2.5th percentile of the resampled differences
    high: float  # 97.5th percentile
    a_wins: float  # share of resamples where a scored strictly higher
    samples: int


def resampled_metric(matches: Sequence[VideoMatches], picks: np.ndarray, category_ids: Sequence, metric: str) -> float:
    """``metric`` over the videos ``matches[picks]`` (a video drawn twice counts twice, under a fresh id)."""
    drawn = [dataclasses.replace(matches[index], video_id=position) for position, index in enumerate(picks)]
    return accumulate(drawn, category_ids).stats[metric]


def paired_bootstrap(gt: dict, results_a: list, results_b: list, metric: str = "AP", samples: int = 1000,
                     seed: int = 0) -> BootstrapDifference:
    """The difference ``metric(results_a) - metric(results_b)`` on ``gt`` with its bootstrap interval."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    matches_a, category_ids = match_videos(gt, results_a)
    matches_b, _ = match_videos(gt, results_b)
    videos = len(matches_a)

    def difference(picks: np.ndarray) -> float:
        return (resampled_metric(matches_a, picks, category_ids, metric)
                - resampled_metric(matches_b, picks, category_ids, metric))

    observed = difference(np.arange(videos))
    rng = np.random.default_rng(seed)
    differences = np.array([difference(rng.integers(0, videos, videos)) for _ in range(samples)])
    low, high = np.percentile(differences, [2.5, 97.5])
    return BootstrapDifference(metric, float(observed), float(low), float(high),
                               float(np.mean(differences > 0)), samples)
