"""Per-class IoU of instance label images, accumulated over a data set (the Cityscapes / Apolloscape convention).

Each pixel of a label image (:mod:`tubelets.io.instance_png`) has one category, ``value // 1000`` (0 background).
Over every scored frame of every video, per category ``c``::

    intersection_c = pixels predicted c where the ground truth is c
    union_c        = pixels predicted c or where the ground truth is c
    IoU_c          = sum of intersection_c / sum of union_c        (sums over all frames, not a mean of per-frame IoUs)

which is the IoU of the union of the class's predicted pixels with the union of its ground-truth pixels over the
data set, Cityscapes' ``TP / (TP + FP + FN)``. Instances do not enter: a car predicted where another car is counts.
The mean IoU is the plain mean over the categories with a union (a category only predicted scores 0 and counts; a
category neither predicted nor in the ground truth is left out, as Cityscapes leaves out a label with no pixel).
Background is not a category of the mean.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

import numpy as np

from tubelets.io.instance_png import CATEGORY_FACTOR, MAX_VALUE, category_map
from tubelets.tables import utc_now

SCOPE = "class_iou"  # the metrics table's scope of these rows
NUM_CLASSES = MAX_VALUE // CATEGORY_FACTOR + 1  # category ids 0 (background) .. 65: what a 16-bit value can carry


@dataclasses.dataclass
class ClassIoU:
    """Accumulates a confusion matrix of categories over frames; ``iou()`` gives each category's IoU.

    ``confusion[g, p]``: pixels whose ground-truth category is ``g`` and predicted category ``p`` (int64, 66 x 66).
    """

    confusion: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64))

    def add(self, predicted: np.ndarray, ground_truth: np.ndarray) -> None:
        """One frame: label maps (or category maps) of one shape; values are label values (``category * 1000 + i``)."""
        if predicted.shape != ground_truth.shape:
            raise ValueError(f"predicted {predicted.shape} and ground truth {ground_truth.shape} differ in size")
        pairs = category_map(ground_truth).ravel() * NUM_CLASSES + category_map(predicted).ravel()
        self.confusion += np.bincount(pairs, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)

    def intersection_union(self) -> dict[int, tuple[int, int]]:
        """``{category: (intersection, union)}`` of every category with a union, ascending (no background)."""
        intersection = np.diag(self.confusion)
        union = self.confusion.sum(axis=0) + self.confusion.sum(axis=1) - intersection
        return {category: (int(intersection[category]), int(union[category]))
                for category in range(1, NUM_CLASSES) if union[category] > 0}

    def iou(self) -> dict[int, float]:
        """``{category: IoU}`` of every category predicted or in the ground truth, ascending."""
        return {category: inter / union for category, (inter, union) in self.intersection_union().items()}

    def mean_iou(self) -> Optional[float]:
        """The mean over :meth:`iou`'s categories; None where no pixel of any category was seen."""
        values = list(self.iou().values())
        return float(np.mean(values)) if values else None


def class_iou_rows(scores: ClassIoU, dataset: str, tracker: str, category_names: Mapping[int, str],
                   counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """Rows of the ``metrics`` table: the mean (``category_id`` null), then one per category, scope ``class_iou``.

    ``counts``: ``num_videos``, ``num_gt_instances``, ``num_predictions`` of the whole scoring, on every row (as
    the VIS category rows carry the overall counts). ``dataset``: the ground truth scored against.
    """
    common = {"dataset": dataset, "tracker": tracker, "task": "vis", "scope": SCOPE, "created_at": utc_now(),
              "num_videos": int(counts["num_videos"]), "num_gt_instances": int(counts["num_gt_instances"]),
              "num_predictions": int(counts["num_predictions"])}
    rows = [{**common, "category_id": None, "category_name": None, "iou": scores.mean_iou()}]
    rows += [{**common, "category_id": category, "category_name": category_names.get(category, str(category)),
              "iou": value} for category, value in scores.iou().items()]
    return rows
