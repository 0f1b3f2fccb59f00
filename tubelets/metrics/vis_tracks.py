"""One video's ground-truth tracks or predictions, ready for the video IoU.

A segmentation list has one entry per frame: a compressed RLE (``counts`` a
string), an uncompressed RLE (``counts`` a list of column-major run lengths), a
polygon list (COCO style; uses the video's ``height``/``width``) or a falsy value
(``null``, ``{}``, ``[]``) for a frame without a mask. Compressed RLEs go to
pycocotools as they are; the other forms are converted once.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from pycocotools import mask as coco_mask

from tubelets.errors import DatasetError
from tubelets.metrics.vis_rle import RleFormatError, pixel_totals

# pycocotools 2.0.x ``area`` overflows a uint8 with numpy 2 on lists of more than 255 RLEs.
_AREA_BATCH = 255


@dataclass
class TrackSet:
    """Tracks of one video. ``N`` tracks, ``F`` the longest segmentation list.

    category: int64[N]
    length: int64[N], number of entries of each segmentation list
    masks: list of N lists; ``masks[t][f]`` a pycocotools-ready RLE dict or None
    unchecked: bool[N, F], masks that came as compressed strings (others were
        checked or built on loading)
    areas: int64[N, F], mask area per frame (0 where null or past the end)
    avg_area: float64[N], mean of the truthy per-frame areas (see ``vis_params``)
    frame_size: ``(height, width)`` of every mask, None when there is none
    score: float64[N] (predictions; 0 for ground truth)
    ignore: bool[N] (crowd); rematchable: bool[N] (may take several predictions)
    id_is_nonzero: bool[N] (ground-truth id != 0; the official accumulation tests it)
    origin: int64[N], index of each track in the records it was built from
    describe: names record ``origin[t]`` in error messages
    """

    category: np.ndarray
    length: np.ndarray
    masks: list
    unchecked: np.ndarray
    areas: np.ndarray
    avg_area: np.ndarray
    frame_size: tuple | None
    score: np.ndarray
    ignore: np.ndarray
    rematchable: np.ndarray
    id_is_nonzero: np.ndarray
    origin: np.ndarray
    describe: Callable

    def __len__(self) -> int:
        return len(self.category)

    def take(self, index: np.ndarray) -> "TrackSet":
        """The tracks ``index`` (int[K]) in that order."""
        return TrackSet(category=self.category[index], length=self.length[index],
                        masks=[self.masks[i] for i in index], unchecked=self.unchecked[index],
                        areas=self.areas[index], avg_area=self.avg_area[index],
                        frame_size=self.frame_size, score=self.score[index], ignore=self.ignore[index],
                        rematchable=self.rematchable[index], id_is_nonzero=self.id_is_nonzero[index],
                        origin=self.origin[index], describe=self.describe)


def ground_truth_tracks(annotations: Sequence[dict], video: dict, where: str) -> TrackSet:
    """A video's ground-truth annotations, in the given order.

    ``avg_area`` comes from each annotation's ``areas`` (as the official evaluator
    reads it), from the masks when the field is missing.
    """
    def label(t):
        return f"{where}: annotation id {annotations[t].get('id')!r}"

    tracks = _track_set([_field(a, "segmentations", label, t) for t, a in enumerate(annotations)], video, label)
    for t, ann in enumerate(annotations):
        if "areas" in ann:
            if not isinstance(ann["areas"], list):
                raise DatasetError(f"{label(t)}: 'areas' must be a list (one entry per frame)")
            tracks.avg_area[t] = mean_present_area(ann["areas"])
    crowd = [a.get("iscrowd", 0) for a in annotations]
    tracks.category = np.array([_field(a, "category_id", label, t) for t, a in enumerate(annotations)], dtype=np.int64)
    tracks.ignore = np.array([bool(c) for c in crowd], dtype=bool)
    tracks.rematchable = np.array([bool(c) and int(c) != 0 for c in crowd], dtype=bool)
    tracks.id_is_nonzero = np.array([a.get("id") != 0 for a in annotations], dtype=bool)
    return tracks


def prediction_tracks(predictions: Sequence[dict], video: dict, where: str) -> TrackSet:
    """A video's predictions, in the given (results-file) order."""
    def label(t):
        return f"{where}: prediction {t}"

    tracks = _track_set([_field(p, "segmentations", label, t) for t, p in enumerate(predictions)], video, label)
    scores = [_field(p, "score", label, t) for t, p in enumerate(predictions)]
    for t, score in enumerate(scores):
        if not isinstance(score, numbers.Real) or isinstance(score, bool):
            raise DatasetError(f"{label(t)}: score must be a number, got {score!r}")
    tracks.score = np.array(scores, dtype=np.float64)
    tracks.category = np.array([_field(p, "category_id", label, t) for t, p in enumerate(predictions)], dtype=np.int64)
    return tracks


def check_masks(*track_sets: TrackSet) -> None:
    """Raise ``DatasetError`` unless the counts of every compressed RLE of the
    tracks add up to height x width: pycocotools never checks, and its intersection
    loop does not end when two totals differ. (A negative run length that other
    counts make up for is not caught.)"""
    found = [(tracks, t, f) for tracks in track_sets for t, f in zip(*np.nonzero(tracks.unchecked))]
    strings = [tracks.masks[t][f]["counts"] for tracks, t, f in found]
    try:
        totals = pixel_totals([c.encode("ascii") if isinstance(c, str) else c for c in strings])
    except (RleFormatError, UnicodeEncodeError):
        totals = np.array([_total_or_minus_one(c) for c in strings])
    for i in np.flatnonzero(totals != [tracks.frame_size[0] * tracks.frame_size[1] for tracks, _, _ in found]):
        tracks, t, f = found[i]
        raise DatasetError(f"{tracks.describe(int(tracks.origin[t]))}: frame {f}: malformed RLE (its counts must "
                           f"add up to {tracks.frame_size[0]} x {tracks.frame_size[1]})")


def mean_present_area(areas: Sequence) -> float:
    """Mean of the truthy entries (0 when none), computed as the official code does."""
    present = [a for a in areas if a]
    return float(np.array(present).mean()) if present else 0.0


def _field(record, key: str, label: Callable, t: int):
    if not isinstance(record, dict) or key not in record:
        raise DatasetError(f"{label(t)}: missing {key!r}")
    return record[key]


def _track_set(segmentation_lists: Sequence, video: dict, label: Callable) -> TrackSet:
    n = len(segmentation_lists)
    masks, present, frame_size = _collect_masks(segmentation_lists, video, label)
    length = np.array([len(s) for s in segmentation_lists], dtype=np.int64)
    areas = np.zeros((n, int(length.max()) if n else 0), dtype=np.int64)
    unchecked = np.zeros(areas.shape, dtype=bool)
    for t, f in present:
        unchecked[t, f] = masks[t][f] is segmentation_lists[t][f]  # kept as given: a compressed RLE
    rles = [masks[t][f] for t, f in present]
    if rles:
        at = np.array(present, dtype=np.int64)
        areas[at[:, 0], at[:, 1]] = np.concatenate(
            [coco_mask.area(rles[i:i + _AREA_BATCH]) for i in range(0, len(rles), _AREA_BATCH)])
    nonzero = (areas > 0).sum(axis=1)
    avg_area = np.zeros(n)
    np.divide(areas.sum(axis=1), nonzero, out=avg_area, where=nonzero > 0)  # exact: integer sums
    return TrackSet(category=np.zeros(n, np.int64), length=length, masks=masks, unchecked=unchecked, areas=areas,
                    avg_area=avg_area, frame_size=frame_size, score=np.zeros(n), ignore=np.zeros(n, bool),
                    rematchable=np.zeros(n, bool), id_is_nonzero=np.ones(n, bool), origin=np.arange(n),
                    describe=label)


def _collect_masks(segmentation_lists: Sequence, video: dict, label: Callable) -> tuple[list, list, tuple | None]:
    """Per track and frame a pycocotools-ready RLE or None; the (track, frame) of
    each mask; the one mask size of them all."""
    for t, segs in enumerate(segmentation_lists):
        if type(segs) is not list:
            raise DatasetError(f"{label(t)}: 'segmentations' must be a list (one entry per frame)")
    present = [(t, f) for t, segs in enumerate(segmentation_lists) for f, seg in enumerate(segs) if seg]
    size = _one_compressed_size([segmentation_lists[t][f] for t, f in present])
    if size is None:  # not all compressed RLEs of one size: go mask by mask
        return _collect_mixed_masks(segmentation_lists, video, label)
    return [[seg or None for seg in segs] for segs in segmentation_lists], present, size


def _one_compressed_size(segs: list) -> tuple | None:
    """``(height, width)`` when every mask is a compressed RLE dict of that one size, else None.

    The usual results file; one pass instead of a check per mask."""
    try:
        kinds = {(type(s), type(s["counts"]), *s["size"]) for s in segs}
    except (TypeError, KeyError):
        return None
    if len(kinds) != 1:
        return None
    seg_type, counts_type, *size = kinds.pop()
    ok = seg_type is dict and counts_type in (str, bytes) and len(size) == 2
    return (int(size[0]), int(size[1])) if ok else None


def _collect_mixed_masks(segmentation_lists: Sequence, video: dict, label: Callable) -> tuple[list, list, tuple | None]:
    masks, present, first_size = [], [], None
    for t, segs in enumerate(segmentation_lists):
        row = [None] * len(segs)
        for f, seg in enumerate(segs):
            if not seg:
                continue
            counts, size = (seg.get("counts"), seg.get("size")) if type(seg) is dict else (None, None)
            if type(counts) in (str, bytes) and type(size) in (list, tuple) and len(size) == 2:
                row[f] = seg  # pycocotools reads 'size' and 'counts', str or bytes
            elif type(counts) is list and type(size) in (list, tuple) and len(size) == 2:
                pass  # checked and compressed below, all at once
            elif type(seg) is list:
                row[f] = _polygon_rle(seg, video, label(t))
                size = row[f]["size"]
            else:
                raise DatasetError(f"{label(t)}: frame {f} is not an RLE, a polygon or null")
            present.append((t, f))
            if first_size is None:
                first_size = size
            elif size[0] != first_size[0] or size[1] != first_size[1]:
                raise DatasetError(f"{label(t)}: frame {f} is {size[0]} x {size[1]} but other masks of the video "
                                   f"are {first_size[0]} x {first_size[1]}")
        masks.append(row)
    _convert_uncompressed(segmentation_lists, masks, present, label)
    return masks, present, (int(first_size[0]), int(first_size[1])) if first_size is not None else None


def _polygon_rle(polygons: list, video: dict, label: str) -> dict:
    if "height" not in video or "width" not in video:
        raise DatasetError(f"{label}: a polygon needs the video's height and width")
    return coco_mask.merge(coco_mask.frPyObjects(polygons, video["height"], video["width"]))


def _convert_uncompressed(segmentation_lists: Sequence, masks: list, present: list, label: Callable) -> None:
    """Check and compress the uncompressed RLEs (still None in ``masks``) in one pycocotools call."""
    at = [(t, f) for t, f in present if masks[t][f] is None]
    if not at:
        return
    segs = [segmentation_lists[t][f] for t, f in at]
    for bad in _bad_uncompressed(segs):
        (t, f), (height, width) = at[bad], segs[bad]["size"]
        raise DatasetError(f"{label(t)}: frame {f}: malformed RLE (uncompressed counts must be non-negative "
                           f"integers adding up to {height} x {width})")
    # Two-key dicts: pycocotools takes a list of 4-key dicts for boxes.
    converted = coco_mask.frPyObjects([{"size": s["size"], "counts": s["counts"]} for s in segs], 0, 0)
    for (t, f), rle in zip(at, converted):
        masks[t][f] = rle


def _bad_uncompressed(segs: list) -> np.ndarray:
    """Indices of the uncompressed RLEs whose counts are not numbers >= 0 adding up to H x W."""
    expected = np.array([int(s["size"][0]) * int(s["size"][1]) for s in segs])
    try:
        flat = np.fromiter(itertools.chain.from_iterable(s["counts"] for s in segs), dtype=np.int64)
    except (TypeError, ValueError, OverflowError):  # find the culprit the slow way
        return np.array([i for i, s in enumerate(segs) if not _valid_counts(s["counts"], expected[i])], dtype=int)
    owner = np.repeat(np.arange(len(segs)), [len(s["counts"]) for s in segs])
    totals = np.bincount(owner, weights=flat, minlength=len(segs))
    negative = np.bincount(owner, weights=flat < 0, minlength=len(segs)) > 0
    return np.flatnonzero((totals != expected) | negative)


def _valid_counts(counts: list, pixels: int) -> bool:
    return all(isinstance(c, numbers.Integral) and c >= 0 for c in counts) and sum(counts) == pixels


def _total_or_minus_one(counts) -> int:
    try:
        return int(pixel_totals([counts.encode("ascii") if isinstance(counts, str) else counts])[0])
    except (RleFormatError, UnicodeEncodeError):
        return -1
