"""Score a tracked data set against its ground truth, one video at a time.

Each video is matched where its tubelet rows are made (:class:`MatchVideo`),
so its masks never cross a shuffle, and its matches (a few KB,
:mod:`tubelets.metrics.vis_store`) go to the ``video_matches`` table. The
metrics are one accumulation over that table once the pipeline has ended
(:func:`tubelets.pipelines.evaluate.score_run`); :func:`metric_rows` makes
them rows of the ``metrics`` table: one overall row and one row per category
with ground truth.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Mapping, Optional, Sequence

import apache_beam as beam

from tubelets.errors import DatasetError
from tubelets.io.dataset import YouTubeVISDataset, video_records
from tubelets.io.results import ordered_results
from tubelets.metrics.vis import VisMetrics, category_stats, load_json
from tubelets.metrics.vis_data import GroundTruthIndex, index_ground_truth
from tubelets.metrics.vis_match import VideoMatches, match_video
from tubelets.metrics.vis_store import matches_to_row
from tubelets.process_cache import process_cached
from tubelets.runs import video_file_stem
from tubelets.tables import METRIC_NAMES, utc_now


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """A data set's ground truth for matching: ``index`` by video id; ``videos`` maps the file stem of each
    video's name (:func:`tubelets.runs.video_file_stem`, how its tubelets file is named) to ``(id, name)``."""

    index: GroundTruthIndex
    videos: Mapping[str, tuple[int, str]]

    def video(self, stem: str) -> tuple[int, str]:
        """``(video id, name)`` of the video whose files are named ``stem``."""
        try:
            return self.videos[stem]
        except KeyError:
            raise DatasetError(f"no video of the data set has files named {stem!r}") from None

    def match(self, video_id: int, rows: Sequence[Mapping]) -> VideoMatches:
        """One video's matches from its rows of the ``tubelets`` table (no rows: its ground truth is missed,
        as the official evaluator counts a video without results). The entries are put in results.json's
        order first, which breaks score ties."""
        index = self.index
        return match_video(index.videos[video_id], index.annotations_by_video.get(video_id, []),
                           ordered_results(rows), index.category_ids)

    def matches_row(self, stem: str, rows: Sequence[Mapping]) -> dict:
        """The ``video_matches`` row of the video whose files are named ``stem``, from its tubelet rows."""
        video_id, name = self.video(stem)
        return matches_to_row(self.match(video_id, rows), name)


@process_cached(maxsize=2)
def load_ground_truth(dataset_url: str, digest: str) -> GroundTruth:
    """The ground truth of the YouTube-VIS data set at ``dataset_url``, read once per process.

    Once, because Beam's Dask runner sets a DoFn up for every partition it runs, that is for every
    video (:mod:`tubelets.process_cache`): without the cache each video would parse the whole data
    set's annotations, a cost per video that grows with the bucket. ``digest`` (the annotations'
    :func:`tubelets.pipelines.evaluate.dataset_digest`) is part of the key, so a worker that outlives
    a run reads a rewritten file again. The file is parsed once: the index and the videos' names
    come from the same parsed JSON.
    """
    url = YouTubeVISDataset(dataset_url).annotations_url
    data = load_json(url, "ground truth")
    index = index_ground_truth(data, url)
    return GroundTruth(index, {video_file_stem(video.name): (video.id, video.name)
                               for video in video_records(url, data)})


class MatchVideo(beam.DoFn):
    """``(file stem, [tubelet row, ...][, metadata])`` -> ``(file stem, [video_matches row])``, for
    :class:`~tubelets.transforms.outputs.WriteRunFiles`.

    Every tracked video is matched, one with no tubelets too (all its ground truth missed). A
    video that failed to decode has no rows to match: the launcher matches it after the run.
    """

    def __init__(self, dataset_url: str, digest: str):
        self._dataset_url = dataset_url
        self._digest = digest

    def setup(self):
        self._truth = load_ground_truth(self._dataset_url, self._digest)

    def process(self, named_rows) -> Iterator[tuple[str, list[dict]]]:
        stem, rows, *_ = named_rows
        yield stem, [self._truth.matches_row(stem, rows)]


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


def headline(rows: list[dict]) -> str:
    """One line with the overall AP, AP50, AP75, AR1, AR10."""
    overall = next(r for r in rows if r["scope"] == "overall")
    return "  ".join(f"{k} {overall[k] * 100:.1f}" if overall[k] is not None else f"{k} -"
                     for k in ("AP", "AP50", "AP75", "AR1", "AR10"))
