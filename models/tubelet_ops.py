"""Helpers every tracker shares: box IoU, the tubelet class/score rules, and output rows.

A tracker links detections into per-instance lists of :class:`TubeletFrame`
plus class *votes* (a label and a score per linked detection); it hands both
to :func:`finalize_tubelet`, so every tracker applies the same rules:

* the category is the most frequent vote; a tie goes to the label with the
  larger summed score, then to the smaller id (deterministic);
* the score is the mean per-frame (calibrated) score over frames whose mask
  is non-empty; frames with an empty mask are dropped, as the
  :class:`Tubelet` contract asks.

Votes are kept apart from frames because a pixel tracker may propagate a mask
into a frame where no detection voted.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.records import FrameDetections, Tubelet, TubeletFrame, VideoMeta


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``x1, y1, x2, y2`` boxes ``[N, 4]`` and ``[M, 4]``: ``float64 [N, M]``.

    Degenerate boxes (zero area) have IoU 0 with everything.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def majority_label(labels: Sequence[int], scores: Sequence[float]) -> int:
    """The most frequent label; ties go to the larger summed score, then the smaller id."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.size == 0 or labels.shape != scores.shape:
        raise ValueError(f"need one score per label and at least one label, got {labels.shape} and {scores.shape}")
    unique, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    summed = np.bincount(inverse, weights=scores)
    # lexsort: the last key is primary; -unique makes the smaller id win a full tie.
    best = np.lexsort((-unique, summed, counts))[-1]
    return int(unique[best])


def frame_of(detections: FrameDetections, index: int) -> TubeletFrame:
    """Detection ``index`` of one frame as a :class:`TubeletFrame`."""
    return TubeletFrame(
        frame=detections.frame,
        mask=detections.masks[index],
        box=np.asarray(detections.boxes[index], dtype=np.float32),
        score=float(detections.scores[index]),
    )


def finalize_tubelet(
    tubelet_id: int, frames: Sequence[TubeletFrame], labels: Sequence[int], scores: Sequence[float]
) -> Optional[Tubelet]:
    """One tubelet from linked frames and class votes (``labels[i]`` with ``scores[i]``).

    Returns None when no frame has a non-empty mask. Frames must be of
    distinct frame numbers; they come back sorted.
    """
    valid = sorted((item for item in frames if masks.area(item.mask) > 0), key=lambda item: item.frame)
    numbers = [item.frame for item in valid]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"tubelet {tubelet_id} has two masks in one frame: frames {numbers}")
    if not valid:
        return None
    category = majority_label(labels, scores)
    score = float(np.mean([item.score for item in valid]))
    return Tubelet(tubelet_id=tubelet_id, category_id=category, score=score, frames=valid)


def number_tubelets(tubelets: Iterable[Tubelet]) -> list[Tubelet]:
    """Copies numbered ``0 .. n-1`` by first frame; ties keep the given order."""
    ordered = sorted(tubelets, key=lambda tubelet: tubelet.first_frame)
    return [dataclasses.replace(tubelet, tubelet_id=index) for index, tubelet in enumerate(ordered)]


def _check_tubelet(tubelet: Tubelet, meta: VideoMeta) -> None:
    """A tubelet needs a frame, and each frame must lie inside the decoded video and have its size."""
    if not tubelet.frames:
        raise ValueError(f"video {meta.key!r}, tubelet {tubelet.tubelet_id} has no frames")
    for item in tubelet.frames:
        size = [int(v) for v in item.mask["size"]]
        if not 0 <= item.frame < meta.length or size != [meta.height, meta.width]:
            raise ValueError(
                f"video {meta.key!r}, tubelet {tubelet.tubelet_id}: frame {item.frame} with a {size} mask does "
                f"not fit a decoded video of {meta.length} frames of [{meta.height}, {meta.width}]"
            )


def tubelets_to_results(tubelets: Iterable[Tubelet], meta: VideoMeta) -> list[dict]:
    """YouTube-VIS results entries, a JSON RLE (or None) for each frame: one per tubelet and per other class.

    A tubelet's ``other_classes`` are entries of their own, with the same masks.
    """
    if meta.video_id is None:
        raise DatasetError(f"video {meta.key!r} has no data set video_id, so it cannot go into a results file")
    results = []
    for tubelet in tubelets:
        _check_tubelet(tubelet, meta)
        segmentations: list[Optional[dict]] = [None] * meta.length
        for item in tubelet.frames:
            segmentations[item.frame] = masks.normalize(item.mask)
        for category, score in [(tubelet.category_id, tubelet.score), *tubelet.other_classes]:
            results.append(
                {"video_id": int(meta.video_id), "category_id": int(category), "score": float(score),
                 "segmentations": segmentations}
            )
    return results


def _frame_row(item: TubeletFrame, meta: VideoMeta) -> dict:
    """One element of the ``frames`` column of the tubelets table."""
    rle = masks.normalize(item.mask)
    source_frame = item.frame if meta.frame_indices is None else meta.frame_indices[item.frame]
    return {
        "frame": int(item.frame),
        "source_frame": int(source_frame),
        "height": int(rle["size"][0]),
        "width": int(rle["size"][1]),
        "rle": rle["counts"],
        "box": [float(v) for v in item.box],
        "score": float(item.score),
    }


def tubelet_rows(
    tubelets: Iterable[Tubelet], meta: VideoMeta, run_id: str, category_names: Mapping[int, str]
) -> list[dict]:
    """Rows of the ``tubelets`` Parquet table (``tubelets.tables.TUBELETS``), one per tubelet.

    ``source_frame`` maps each frame through ``meta.frame_indices`` (identity when None).
    """
    if meta.frame_indices is not None and len(meta.frame_indices) != meta.length:
        raise ValueError(
            f"video {meta.key!r}: {len(meta.frame_indices)} frame_indices for {meta.length} decoded frames"
        )
    rows = []
    for tubelet in tubelets:
        for category in [tubelet.category_id, *(category for category, _ in tubelet.other_classes)]:
            if category not in category_names:
                raise ValueError(
                    f"video {meta.key!r}, tubelet {tubelet.tubelet_id}: category id {category} has no "
                    f"name; named ids are {sorted(category_names)}"
                )
        _check_tubelet(tubelet, meta)
        rows.append(
            {
                "run_id": run_id,
                "video": meta.key,
                "video_id": meta.video_id,
                "tubelet_id": int(tubelet.tubelet_id),
                "category_id": int(tubelet.category_id),
                "category_name": category_names[tubelet.category_id],
                "score": float(tubelet.score),
                "first_frame": int(tubelet.first_frame),
                "last_frame": int(tubelet.last_frame),
                "frame_count": len(tubelet.frames),
                "video_length": int(meta.length),
                "frames": [_frame_row(item, meta) for item in tubelet.frames],
                "other_classes": [
                    {"category_id": int(category), "category_name": category_names[category], "score": float(score)}
                    for category, score in tubelet.other_classes
                ],
            }
        )
    return rows


def tubelet_from_row(row: Mapping) -> Tubelet:
    """A row of the ``tubelets`` table back as a :class:`Tubelet` (the inverse of :func:`tubelet_rows`)."""
    frames = [
        TubeletFrame(
            int(item["frame"]),
            {"size": [int(item["height"]), int(item["width"])], "counts": item["rle"]},
            np.asarray(item["box"], np.float32),
            float(item["score"]),
        )
        for item in row["frames"]
    ]
    other = [(int(entry["category_id"]), float(entry["score"])) for entry in row.get("other_classes") or []]
    return Tubelet(int(row["tubelet_id"]), int(row["category_id"]), float(row["score"]), frames, other)


def results_from_rows(rows: Sequence[Mapping]) -> list[dict]:
    """YouTube-VIS results entries of one video from its rows of the ``tubelets`` table.

    Scores are taken as the table stores them (float32), whether the rows were
    just made or read back from a file, so a resumed run scores exactly what an
    uninterrupted one does, and the metrics agree with the table.
    """
    if not rows:
        return []
    first = rows[0]
    size = (first["frames"][0]["height"], first["frames"][0]["width"]) if first["frames"] else (0, 0)
    meta = VideoMeta(key=first["video"], width=int(size[1]), height=int(size[0]), length=int(first["video_length"]),
                     video_id=first["video_id"])
    stored = [{**row, "score": float(np.float32(row["score"])),
               "other_classes": [{**other, "score": float(np.float32(other["score"]))}
                                 for other in row.get("other_classes") or []]} for row in rows]
    return tubelets_to_results([tubelet_from_row(row) for row in stored], meta)
