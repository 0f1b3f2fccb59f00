"""YouTube-VIS ground truth and results: validation and grouping by video.

Ground truth (``instances.json`` style)::

    {"videos": [{"id", "height", "width", ...}], "categories": [{"id", ...}],
     "annotations": [{"id", "video_id", "category_id", "iscrowd",
                      "segmentations": [RLE | polygon | null, ...],   # one per frame
                      "areas": [float | null, ...]}]}

Results: a list of ``{"video_id", "category_id", "score", "segmentations"}``.

Segmentation forms are described in ``vis_tracks``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Collection, Sequence

from tubelets.errors import DatasetError


@dataclass(frozen=True)
class GroundTruthIndex:
    """The ground truth grouped by video.

    ``video_ids`` ascending; ``annotations_by_video[v]`` in file order, only of
    listed categories; ``category_ids`` ascending, with or without annotations.
    """

    videos: dict
    video_ids: tuple
    category_ids: tuple
    annotations_by_video: dict

    @property
    def num_annotations(self) -> int:
        return sum(len(anns) for anns in self.annotations_by_video.values())


def index_ground_truth(gt: dict, source: str = "ground truth") -> GroundTruthIndex:
    """Validate and group a ground-truth dict; errors name ``source``."""
    if not isinstance(gt, dict):
        raise DatasetError(f"{source}: expected a JSON object with videos, categories and annotations")
    for key in ("videos", "categories"):
        if not isinstance(gt.get(key), list):
            raise DatasetError(f"{source}: missing or malformed {key!r} list")
    videos = {_required(v, "id", f"{source}: video entry"): v for v in gt["videos"]}
    category_ids = tuple(sorted({_required(c, "id", f"{source}: category entry") for c in gt["categories"]}))
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in category_ids):
        raise DatasetError(f"{source}: category ids must be integers")
    known = set(category_ids)
    by_video: dict = defaultdict(list)
    seen_ids: set = set()
    for i, ann in enumerate(gt.get("annotations") or []):
        for key in ("id", "video_id", "category_id"):
            _required(ann, key, f"{source}: annotation {i}")
        if ann["id"] in seen_ids:
            raise DatasetError(f"{source}: duplicate annotation id {ann['id']!r}")
        seen_ids.add(ann["id"])
        if ann["video_id"] in videos and ann["category_id"] in known:
            by_video[ann["video_id"]].append(ann)
    return GroundTruthIndex(videos=videos, video_ids=tuple(sorted(videos)), category_ids=category_ids,
                            annotations_by_video=dict(by_video))


def group_results(results, index: GroundTruthIndex, source: str = "results") -> dict:
    """Results grouped by video id, in file order, only of the ground truth's categories.

    A result on a video the ground truth does not list is an error (the official
    loader asserts the same).
    """
    if not isinstance(results, list):
        raise DatasetError(f"{source}: expected a JSON list of predictions")
    known = set(index.category_ids)
    by_video: dict = defaultdict(list)
    for i, pred in enumerate(results):
        for key in ("video_id", "category_id", "score", "segmentations"):
            _required(pred, key, f"{source}: entry {i}")
        if pred["video_id"] not in index.videos:
            raise DatasetError(f"{source}: entry {i} is on video {pred['video_id']!r}, "
                               "which the ground truth does not list")
        if pred["category_id"] in known:
            by_video[pred["video_id"]].append(pred)
    return dict(by_video)


def keep_categories(records: Sequence[dict], category_ids: Collection) -> list[dict]:
    """The records whose ``category_id`` is one of ``category_ids``, order kept."""
    return [r for r in records if r["category_id"] in category_ids]


def _required(record, key: str, label: str):
    if not isinstance(record, dict) or key not in record:
        raise DatasetError(f"{label}: missing {key!r}")
    return record[key]
