"""YouTube-VIS results files: a JSON list of predicted tracks.

Each entry is ``{"video_id": int, "category_id": int, "score": float,
"segmentations": [JSON RLE | None, ...]}`` with one segmentation per frame of
the video (``None`` where the track has no mask). ``write_results`` and
``read_results`` check the structure; ``validate_results`` also checks the
entries against a data set (known video, one mask per frame, mask size).
``stream_results`` writes entries as they come, one at a time, so a file of a
whole bucket's results never has to be held in memory; ``ordered_results`` puts
a video's entries in the file's order (:func:`results_order`).
"""

from __future__ import annotations

import json
import math
import uuid
from numbers import Integral, Real
from typing import Iterable, Mapping, Sequence

import fsspec

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.tubelet_rows import results_from_rows

REQUIRED_KEYS = ("video_id", "category_id", "score", "segmentations")


def write_results(url: str, results: Iterable[dict]) -> None:
    """Check ``results`` and write them as one JSON list to any fsspec ``url``."""
    stream_results(url, (normalize_result(entry, url, i) for i, entry in enumerate(results)))


def stream_results(url: str, entries: Iterable[dict]) -> int:
    """Write ``entries`` as one JSON list to any fsspec ``url``, entry by entry; returns how many.

    The bytes are ``json.dump(list(entries))``'s, but only one entry is held at a time. The file is
    written under a temporary name and moved in place, so ``url`` never holds half a list (nor
    anything, when ``entries`` raises).
    """
    fs, path = fsspec.core.url_to_fs(url)
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    count = 0
    try:
        with fs.open(temporary, "w") as handle:
            handle.write("[")
            for entry in entries:
                handle.write(", " + json.dumps(entry) if count else json.dumps(entry))  # json.dump's separator
                count += 1
            handle.write("]")
        fs.mv(temporary, path)
    finally:
        if fs.exists(temporary):
            fs.rm(temporary)
    return count


def results_order(entry: Mapping) -> tuple:
    """Sort key of a YouTube-VIS results entry: video, then descending score.

    Category and masks break score ties, so the order is total: the evaluator
    breaks score ties by position, and results.json and each video's matching
    must see one and the same order whatever order the runner delivers.
    """
    masks_text = json.dumps(entry["segmentations"], sort_keys=True)
    return entry["video_id"], -entry["score"], entry["category_id"], masks_text


def ordered_results(rows: Sequence[Mapping]) -> list[dict]:
    """The results entries of rows of the ``tubelets`` table, in :func:`results_order`."""
    return sorted(results_from_rows(rows), key=results_order)


def read_results(url: str) -> list[dict]:
    """Read and check a results file; RLE come back as JSON RLE."""
    try:
        with fsspec.open(url, "r") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{url}: results file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{url}: not valid JSON ({error})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{url}: a results file must hold a JSON list, found {type(data).__name__}")
    return [normalize_result(entry, url, i) for i, entry in enumerate(data)]


def normalize_result(entry, source: str, index: int) -> dict:
    """One result entry with plain Python types and JSON RLE; ``DatasetError`` if malformed.

    ``source`` (a file name) and ``index`` name the entry in error messages.
    """
    where = f"{source}: result #{index}"
    if not isinstance(entry, dict):
        raise DatasetError(f"{where} is a {type(entry).__name__}, not an object")
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise DatasetError(f"{where} lacks {', '.join(map(repr, missing))}")
    for key in ("video_id", "category_id"):
        if not isinstance(entry[key], Integral) or isinstance(entry[key], bool):
            raise DatasetError(f"{where}: {key} must be an integer, got {entry[key]!r}")
    score = entry["score"]
    if not isinstance(score, Real) or isinstance(score, bool) or not math.isfinite(score):
        raise DatasetError(f"{where}: score must be a finite number, got {score!r}")
    if not isinstance(entry["segmentations"], list):
        raise DatasetError(f"{where}: segmentations must be a list (one RLE or null per frame)")
    return {
        "video_id": int(entry["video_id"]),
        "category_id": int(entry["category_id"]),
        "score": float(score),
        "segmentations": [_normalized_rle(rle, where, t) for t, rle in enumerate(entry["segmentations"])],
    }


def _normalized_rle(rle, where: str, t: int):
    if rle is None:
        return None
    try:
        return masks.normalize(rle)
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{where}: segmentations[{t}] is not an RLE ({error!r})") from None


def validate_results(results: Iterable[dict], dataset) -> None:
    """Check results against a ``YouTubeVISDataset``; raises ``DatasetError`` on the first bad entry.

    Checks: known video id, known category id, one segmentation per frame, mask size
    ``[height, width]`` of the video.
    """
    videos = {video.id: video for video in dataset.videos}
    category_ids = {category["id"] for category in dataset.categories}
    for i, raw in enumerate(results):
        entry = normalize_result(raw, "results", i)
        where = f"results: result #{i}"
        video = videos.get(entry["video_id"])
        if video is None:
            raise DatasetError(f"{where}: unknown video id {entry['video_id']} (not in {dataset.annotations_url})")
        if category_ids and entry["category_id"] not in category_ids:
            raise DatasetError(f"{where}: unknown category id {entry['category_id']}")
        if len(entry["segmentations"]) != video.length:
            raise DatasetError(
                f"{where}: {len(entry['segmentations'])} segmentations, video {video.name!r} has {video.length} frames"
            )
        for t, rle in enumerate(entry["segmentations"]):
            if rle is not None and rle["size"] != [video.height, video.width]:
                raise DatasetError(
                    f"{where}: segmentations[{t}] has size {rle['size']}, video {video.name!r} is "
                    f"[{video.height}, {video.width}] (height, width)"
                )
