"""Score tracked videos against a data set's ground truth inside the pipeline.

Per-video matching runs in parallel (``MatchVideo``); one global step
accumulates the matches into the YouTube-VIS metrics, which become rows of the
``metrics`` table: one overall row and one row per category with ground truth.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

import apache_beam as beam

from tubelets.metrics.vis import VisMetrics, accumulate, category_stats, load_json
from tubelets.metrics.vis_data import index_ground_truth
from tubelets.metrics.vis_match import VideoMatches, match_video
from tubelets.metrics.vis_store import matches_to_row
from tubelets.runs import video_file_stem
from tubelets.tables import METRIC_NAMES, utc_now
from tubelets.transforms.outputs import results_order
from tubelets.transforms.portable import GatherAll


class MatchVideo(beam.DoFn):
    """``(video_id, {"video": [key], "results": [[entry, ...]]})`` -> ``(key, VideoMatches)``.

    A video of the data set without results (no tubelets, or it failed to
    decode) still counts: its ground truth is missed, as the official
    evaluator would count it.
    """

    def __init__(self, annotations_url: str):
        self._annotations_url = annotations_url

    def setup(self):
        self._index = index_ground_truth(load_json(self._annotations_url, "ground truth"), self._annotations_url)

    def process(self, joined) -> Iterator[tuple[str, VideoMatches]]:
        video_id, grouped = joined
        entries = [entry for batch in grouped["results"] for entry in batch]
        entries.sort(key=results_order)  # the results file's order: it breaks score ties
        keys = list(grouped["video"])
        yield keys[0] if keys else str(video_id), match_video(
            self._index.videos[video_id],
            self._index.annotations_by_video.get(video_id, []),
            entries,
            self._index.category_ids,
        )


def metric_values(stats: Mapping[str, float]) -> dict[str, Optional[float]]:
    """The 12 numbers with the protocol's -1 (nothing to score) as null."""
    return {name: (None if stats[name] < 0 else float(stats[name])) for name in METRIC_NAMES}


def metric_rows(
    metrics: VisMetrics, dataset: str, tracker: str, category_names: Mapping[int, str]
) -> list[dict[str, Any]]:
    """Rows of the ``metrics`` table: overall, then each category with ground truth."""
    created = utc_now()
    counts = {"num_videos": metrics.num_videos, "num_gt_instances": metrics.num_gt,
              "num_predictions": metrics.num_predictions}
    common = {"dataset": dataset, "tracker": tracker, "task": "vis", "created_at": created}
    rows = [{**common, "scope": "overall", "category_id": None, "category_name": None, **metric_values(metrics.stats),
             **counts}]
    for index, category_id in enumerate(metrics.category_ids):
        if category_id not in metrics.per_category:
            continue  # no ground truth of this category: nothing to score
        stats = category_stats(metrics, index)
        rows.append({
            **common, "scope": "category", "category_id": int(category_id),
            "category_name": category_names.get(int(category_id), str(category_id)), **metric_values(stats), **counts,
        })
    return rows


class ScoreVideos(beam.PTransform):
    """``(video_id, [results entries])`` and the data set's ``(video_id, key)`` -> metrics rows and matches.

    Returns ``{"rows": metrics rows, "matches": (file name, [video_matches row])}``: each video's matches
    (:mod:`tubelets.metrics.vis_store`), what a later comparison of runs reads instead of the masks.
    """

    def __init__(self, annotations_url: str, category_ids: list[int], dataset: str, tracker: str,
                 category_names: Mapping[int, str]):
        super().__init__()
        self._annotations_url = annotations_url
        self._category_ids = category_ids
        self._row_args = (dataset, tracker, dict(category_names))

    def expand(self, inputs):
        video_ids, results = inputs
        category_ids, row_args = self._category_ids, self._row_args
        matched = (
            {"video": video_ids, "results": results}
            | "JoinResults" >> beam.CoGroupByKey()
            | "MatchVideo" >> beam.ParDo(MatchVideo(self._annotations_url))
        )
        rows = (
            matched
            | "OnlyMatches" >> beam.Map(lambda named: named[1])
            | "AllMatches" >> GatherAll()  # not ToList: see tubelets.transforms.portable
            | "Accumulate" >> beam.Map(lambda matches: accumulate(matches, category_ids))
            | "MetricRows" >> beam.FlatMap(lambda metrics: metric_rows(metrics, *row_args))
        )
        stored = matched | "MatchRows" >> beam.Map(
            lambda named: (video_file_stem(named[0]), [matches_to_row(named[1], named[0])]))
        return {"rows": rows, "matches": stored}


def headline(rows: list[dict]) -> str:
    """One line with the overall AP, AP50, AP75, AR1, AR10."""
    overall = next(r for r in rows if r["scope"] == "overall")
    return "  ".join(f"{k} {overall[k] * 100:.1f}" if overall[k] is not None else f"{k} -"
                     for k in ("AP", "AP50", "AP75", "AR1", "AR10"))
