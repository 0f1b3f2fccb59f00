"""Is one result set's AP really above another's? A paired bootstrap over videos.

AP differences of 1-2 points between trackers on a 20-video set can be
chance: a handful of videos decide them. :func:`paired_bootstrap` resamples
the set's videos with replacement, scores both result sets on every resample
(the same videos for both, so what the two share cancels out) and reports the
observed difference, its 95 % percentile interval and how often the first set
won. Each video is matched once (:func:`tubelets.metrics.vis.match_videos`);
a resample only re-accumulates, so a thousand resamples take seconds.
:func:`video_contributions` says which videos decide a difference: the
difference on the set without each video in turn.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

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
    difference, video_ids = paired_difference(gt, results_a, results_b, metric)
    videos = len(video_ids)
    observed = difference(np.arange(videos))
    rng = np.random.default_rng(seed)
    differences = np.array([difference(rng.integers(0, videos, videos)) for _ in range(samples)])
    low, high = np.percentile(differences, [2.5, 97.5])
    return BootstrapDifference(metric, float(observed), float(low), float(high),
                               float(np.mean(differences > 0)), samples)


@dataclasses.dataclass(frozen=True)
class VideoContribution:
    """How much of ``metric(a) - metric(b)`` one video makes: the difference with it minus without it."""

    video_id: int
    without: float  # the difference on the set without this video
    contribution: float  # observed - without


def video_contributions(gt: dict, results_a: list, results_b: list,
                        metric: str = "AP") -> tuple[float, list[VideoContribution]]:
    """The observed difference and each video's contribution to it, largest (either sign) first.

    AP pools every video's matches per category, so contributions need not
    add up to the difference; a difference most of which one or two videos
    make is theirs, not the set's.
    """
    difference, video_ids = paired_difference(gt, results_a, results_b, metric)
    everyone = np.arange(len(video_ids))
    observed = difference(everyone)
    contributions = []
    for left_out, video_id in enumerate(video_ids):
        without = difference(np.delete(everyone, left_out)) if len(video_ids) > 1 else 0.0
        contributions.append(VideoContribution(video_id, float(without), float(observed - without)))
    return float(observed), sorted(contributions, key=lambda c: -abs(c.contribution))


def paired_difference(gt: dict, results_a: list, results_b: list,
                      metric: str) -> tuple[Callable[[np.ndarray], float], list[int]]:
    """``(difference(picks), video ids)``: ``metric(a) - metric(b)`` over the videos at indices ``picks``."""
    matches_a, category_ids = match_videos(gt, results_a)
    matches_b, _ = match_videos(gt, results_b)

    def difference(picks: np.ndarray) -> float:
        return (resampled_metric(matches_a, picks, category_ids, metric)
                - resampled_metric(matches_b, picks, category_ids, metric))

    return difference, [m.video_id for m in matches_a]
