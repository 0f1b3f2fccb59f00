"""Tubelets as rows of the ``tubelets`` table (:data:`tubelets.tables.TUBELETS`) and as YouTube-VIS results, and back.

The table's schema is in :mod:`tubelets.tables`; this module is its one writer
and reader of :class:`~tubelets.records.Tubelet` values, so that the pipelines,
the benchmarks and the report serialise a tubelet the same way:

* :func:`tubelet_rows` turns a video's tubelets into table rows (one per tubelet);
  :func:`tubelet_from_row` turns a row back into a tubelet.
* :func:`tubelets_to_results` turns them into YouTube-VIS results entries;
  :func:`results_from_rows` does so from the rows, with the scores as the table stores them.

Every tubelet is checked against its video first: a frame outside the decoded
video, or a mask of another size, is refused before it reaches a file.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.records import Tubelet, TubeletFrame, VideoMeta


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
