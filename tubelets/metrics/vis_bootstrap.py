"""Is one result set's AP really above another's? A paired bootstrap over videos.

AP differences of 1-2 points between trackers on a 20-video set can be
chance: a handful of videos decide them. :func:`bootstrap` resamples the set's
videos with replacement, scores both result sets on every resample (the same
videos for both, so what the two share cancels out) and reports every number
(the 12 overall and the 12 of each category asked for) on the whole set, the
95 % percentile interval of each difference and how often the first set won.

Each video is matched once, from results (:func:`tubelets.metrics.vis.match_videos`)
or read back from a run's ``video_matches`` table (:mod:`tubelets.metrics.vis_store`);
a resample only re-accumulates. :class:`PooledMatches` keeps a result set's
matches in flat arrays, so a resample is one gather and one accumulation per
set, whatever the number of videos or the size of their masks.
:func:`paired_bootstrap` is the one-number form over two results lists;
:func:`video_contributions` says which videos decide a difference: the
difference on the set without each video in turn.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, Sequence

import numpy as np

from tubelets.metrics.vis import METRIC_NAMES, VideoMatches, VisMetrics, accumulate, category_stats, match_videos

# The VideoMatches arrays a resample gathers: one entry per kept prediction along the last axis, and one per
# ground-truth category along the first.
DET_FIELDS = ("det_category", "det_score", "det_rank", "det_tp", "det_fp")
GT_FIELDS = ("gt_category", "gt_valid")


@dataclasses.dataclass(frozen=True)
class BootstrapDifference:
    """``metric(a) - metric(b)`` on the whole set, and over ``samples`` resamples of its videos."""

    metric: str
    observed: float
    low: float  # 2.5th percentile of the resampled differences
    high: float  # 97.5th percentile
    a_wins: float  # share of resamples where a scored strictly higher
    samples: int


class PooledMatches:
    """One result set's per-video matches in flat arrays; :meth:`drawn` gathers any resample of its videos.

    ``accumulate`` concatenates the videos in order and sorts each category stably, so the one record
    :meth:`drawn` returns gives exactly the numbers of the drawn videos as separate records in that order,
    without building (and ``accumulate`` looping over) one object per drawn video.
    """

    def __init__(self, matches: Sequence[VideoMatches]):
        if not matches:
            raise ValueError("no videos to resample")
        self.video_ids = [m.video_id for m in matches]
        self._offsets = {"det": _offsets([m.det_category.size for m in matches]),
                         "gt": _offsets([m.gt_category.size for m in matches])}
        self._arrays = {name: np.concatenate([getattr(m, name) for m in matches], axis=-1 if name in DET_FIELDS
                                             else 0) for name in DET_FIELDS + GT_FIELDS}
        self._counts = np.array([[m.num_gt, m.num_predictions] for m in matches], np.int64)

    def __len__(self) -> int:
        return len(self.video_ids)

    def drawn(self, picks: np.ndarray) -> VideoMatches:
        """The videos at positions ``picks`` as one record, in that order (a video drawn twice counts twice)."""
        picks = np.asarray(picks, np.int64)
        dets, gts = _ranges(self._offsets["det"], picks), _ranges(self._offsets["gt"], picks)
        taken = {**{name: self._arrays[name][..., dets] for name in DET_FIELDS},
                 **{name: self._arrays[name][gts] for name in GT_FIELDS}}
        num_gt, num_predictions = (int(total) for total in self._counts[picks].sum(axis=0))
        return VideoMatches(video_id=0, **taken, num_gt=num_gt, num_predictions=num_predictions)


def _offsets(sizes: Sequence[int]) -> np.ndarray:
    """int64[len(sizes) + 1]: where each video's items start in the pooled arrays, and the end."""
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])


def _ranges(offsets: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Positions in the pooled arrays of the items of the videos ``picks``, video after video."""
    starts, lengths = offsets[picks], offsets[picks + 1] - offsets[picks]
    ends = np.cumsum(lengths)
    return np.arange(ends[-1] if ends.size else 0) + np.repeat(starts - (ends - lengths), lengths)


def resampled_metric(matches: Sequence[VideoMatches], picks: np.ndarray, category_ids: Sequence, metric: str) -> float:
    """``metric`` over the videos ``matches[picks]`` (a video drawn twice counts twice)."""
    return accumulate([PooledMatches(matches).drawn(picks)], category_ids).stats[metric]


def score_rows(metrics: VisMetrics, categories: Sequence[int] = ()) -> np.ndarray:
    """float64[1 + K, 12] of a :class:`VisMetrics`: the overall numbers, then those of each of ``categories``.

    -1 marks a number without ground truth to score, as in ``VisMetrics.stats``. A category's numbers are the
    summary over its slice of the arrays, as the ``metrics`` table's category rows.
    """
    index = {category: k for k, category in enumerate(metrics.category_ids)}
    rows = [metrics.stats] + [category_stats(metrics, index[c]) for c in categories]
    return np.array([[row[name] for name in METRIC_NAMES] for row in rows], np.float64)


def video_ap(matches: VideoMatches) -> float:
    """One video's AP alone; NaN where it has no ground truth to score.

    Accumulated over the video's own ground-truth categories: the others have no ground truth here, so they
    would drop out of the mean anyway, and skipping them keeps a per-video AP cheap.
    """
    value = accumulate([matches], matches.gt_category).stats["AP"]
    return float(value) if value >= 0 else float("nan")


class PairedRuns:
    """Two result sets' matches of the same videos, in the same order, scored together on any resample.

    ``category_ids``: the categories to accumulate (at least those with ground truth); ``categories``: those
    to report a row of numbers for, in this order, after the overall row.
    """

    def __init__(self, matches_a: Sequence[VideoMatches], matches_b: Sequence[VideoMatches],
                 category_ids: Sequence[int], categories: Sequence[int] = ()):
        self.a, self.b = PooledMatches(matches_a), PooledMatches(matches_b)
        if self.a.video_ids != self.b.video_ids:
            raise ValueError("the two result sets' matches are not of the same videos in the same order")
        self.category_ids, self.categories = tuple(category_ids), tuple(categories)
        if set(self.categories) - set(self.category_ids):
            raise ValueError(f"categories {sorted(set(self.categories) - set(self.category_ids))} are not accumulated")

    @property
    def video_ids(self) -> list:
        return self.a.video_ids

    def scores(self, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`score_rows` of a and of b on the videos ``picks``."""
        return tuple(score_rows(accumulate([side.drawn(picks)], self.category_ids), self.categories)
                     for side in (self.a, self.b))


@dataclasses.dataclass(frozen=True)
class PairedBootstrap:
    """Every number of a and b on the whole set, and the 95 % interval of each ``a - b`` over resampled videos.

    Arrays are float64[1 + K, 12]: the overall row, then one row per category of ``categories``; columns in
    ``METRIC_NAMES`` order. NaN where a number is undefined (no ground truth in its range; the same for a and
    b, which share the ground truth). An interval leaves out the resamples where its number is undefined
    (a resample without the category); ``a_wins`` is the share of all resamples where a scored higher.
    """

    categories: tuple
    a: np.ndarray
    b: np.ndarray
    low: np.ndarray
    high: np.ndarray
    a_wins: np.ndarray
    samples: int

    @property
    def difference(self) -> np.ndarray:
        return self.a - self.b


def bootstrap(pair: PairedRuns, samples: int = 1000, seed: int = 0) -> PairedBootstrap:
    """Score a and b on the whole set and on ``samples`` resamples of its videos (each drawn once for both)."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    videos = len(pair.a)
    a, b = (_defined(values) for values in pair.scores(np.arange(videos)))
    rng = np.random.default_rng(seed)
    differences = np.stack([np.subtract(*map(_defined, pair.scores(rng.integers(0, videos, videos))))
                            for _ in range(samples)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a number undefined in every resample: NaN, said once
        low, high = np.nanpercentile(differences, [2.5, 97.5], axis=0)
    return PairedBootstrap(pair.categories, a, b, low, high, np.mean(differences > 0, axis=0), samples)


def _defined(values: np.ndarray) -> np.ndarray:
    return np.where(values < 0, np.nan, values)


def paired_bootstrap(gt: dict, results_a: list, results_b: list, metric: str = "AP", samples: int = 1000,
                     seed: int = 0) -> BootstrapDifference:
    """The difference ``metric(results_a) - metric(results_b)`` on ``gt`` with its bootstrap interval."""
    result = bootstrap(_paired_results(gt, results_a, results_b), samples, seed)
    column = METRIC_NAMES.index(metric)
    return BootstrapDifference(metric, float(result.difference[0, column]), float(result.low[0, column]),
                               float(result.high[0, column]), float(result.a_wins[0, column]), samples)


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
    """``(difference(picks), video ids)``: ``metric(a) - metric(b)`` over the videos at indices ``picks``.

    An undefined number is the protocol's -1 on both sides, so its difference is 0.
    """
    pair = _paired_results(gt, results_a, results_b)
    column = METRIC_NAMES.index(metric)

    def difference(picks: np.ndarray) -> float:
        a, b = pair.scores(picks)
        return float(a[0, column] - b[0, column])

    return difference, pair.video_ids


def _paired_results(gt: dict, results_a: list, results_b: list) -> PairedRuns:
    matches_a, category_ids = match_videos(gt, results_a)
    matches_b, _ = match_videos(gt, results_b)
    return PairedRuns(matches_a, matches_b, category_ids)
