"""Random YouTube-VIS ground truth and noisy predictions of it, for testing and
benchmarking the VIS evaluator (``tubelets.metrics.vis``).

``random_gt`` draws small data sets with the awkward cases the official
evaluator has to handle: crowd tracks, null frames, tracks that are null in every
frame, videos without tracks, categories listed without any ground truth, both
RLE forms. ``noisy_predictions`` turns a ground truth into a results list with
the usual mistakes of a model: missed and duplicated tracks, jittered masks,
dropped and extra frames, wrong classes, false positives, all-null predictions,
scores that follow quality (rounded, so ties happen). Both are deterministic for
a seed. Masks are ``(H, W)`` in pixel rows/columns; RLEs are column-major.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tubelets import masks


def random_gt(seed: int, videos: int = 4, *, frames: tuple[int, int] = (2, 8),
              sizes: tuple = ((24, 32), (48, 64), (150, 170), (300, 400)), categories: int = 4,
              empty_categories: int = 2, tracks: tuple[int, int] = (0, 4), crowd_rate: float = 0.15,
              null_frame_rate: float = 0.2, all_null_rate: float = 0.05, uncompressed_rate: float = 0.5) -> dict:
    """A ground-truth dict in YouTube-VIS format.

    ``frames``/``tracks``: inclusive ranges of the frame count per video and of
    the track count per video; ``sizes``: ``(height, width)`` choices per video.
    Category ids are distinct random ints; the last ``empty_categories`` of them
    get no annotation. Annotation ids start at 1; videos and annotations are listed
    in shuffled order.
    """
    rng = np.random.default_rng(seed)
    category_ids = [int(c) for c in rng.choice(np.arange(1, 10 * (categories + empty_categories) + 2),
                                               categories + empty_categories, replace=False)]
    video_ids = [int(v) for v in rng.choice(np.arange(1, 10 * videos + 2), videos, replace=False)]
    video_records, annotations = [], []
    for video_id in video_ids:
        height, width = (int(v) for v in sizes[rng.integers(len(sizes))])
        length = int(rng.integers(frames[0], frames[1] + 1))
        video_records.append({"id": video_id, "height": height, "width": width, "length": length,
                              "file_names": [f"{video_id:05d}/{f:05d}.jpg" for f in range(length)]})
        for _ in range(int(rng.integers(tracks[0], tracks[1] + 1))):
            annotations.append(_random_track(rng, video_records[-1], category_ids[:categories], crowd_rate,
                                             null_frame_rate, all_null_rate, uncompressed_rate))
    for ann_id, ann in enumerate(annotations, start=1):
        ann["id"] = ann_id
    rng.shuffle(annotations)
    rng.shuffle(video_records)
    return {"videos": video_records, "annotations": annotations,
            "categories": [{"id": c, "name": f"class{c}", "supercategory": "object"}
                           for c in rng.permutation(category_ids).tolist()]}


def _random_track(rng, video: dict, category_ids: list, crowd_rate: float, null_frame_rate: float,
                  all_null_rate: float, uncompressed_rate: float) -> dict:
    height, width, length = video["height"], video["width"], video["length"]
    path = _random_path(rng, height, width, length)
    all_null = rng.random() < all_null_rate
    segmentations, areas = [], []
    for f in range(length):
        mask = None if all_null or rng.random() < null_frame_rate else path(f)
        if mask is None:
            segmentations.append(None)
            areas.append(None)
            continue
        segmentations.append(uncompressed_rle(mask) if rng.random() < uncompressed_rate else masks.encode(mask))
        areas.append(int(mask.sum()))
    return {"video_id": video["id"], "category_id": int(rng.choice(category_ids)),
            "iscrowd": int(rng.random() < crowd_rate), "segmentations": segmentations, "areas": areas}


def _random_path(rng, height: int, width: int, length: int):
    """A moving, resizing rectangle or ellipse: ``path(frame) -> bool[H, W]``."""
    kind = "ellipse" if rng.random() < 0.5 else "box"
    half = np.array([height, width]) * rng.uniform(0.05, 0.6, size=2)
    start = rng.uniform([0, 0], [height, width])
    velocity = rng.normal(0, 0.05, size=2) * np.array([height, width])
    growth = rng.uniform(0.9, 1.1)

    def path(frame: int) -> np.ndarray:
        return blob_mask(kind, start + velocity * frame, half * growth**frame, height, width)

    return path


def blob_mask(kind: str, center, half_size, height: int, width: int) -> np.ndarray:
    """``bool[H, W]``: a box (``|dy| <= hy, |dx| <= hx``) or an ellipse around
    ``center`` ``(row, column)`` with half sizes ``(hy, hx)``, clipped to the frame."""
    rows, cols = np.ogrid[:height, :width]
    dy, dx = (rows + 0.5 - center[0]) / max(half_size[0], 0.5), (cols + 0.5 - center[1]) / max(half_size[1], 0.5)
    if kind == "box":
        return (np.abs(dy) <= 1) & (np.abs(dx) <= 1)
    return dy**2 + dx**2 <= 1


def uncompressed_rle(mask: np.ndarray) -> dict:
    """The uncompressed RLE ``{"size": [H, W], "counts": [int, ...]}`` of a mask:
    column-major run lengths starting with background, as YouTube-VIS ground truth stores them."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": runs}


def noisy_predictions(gt: dict, seed: int, *, miss_rate: float = 0.1, wrong_class_rate: float = 0.1,
                      frame_drop_rate: float = 0.1, extra_frame_rate: float = 0.2, max_shift: int = 2,
                      morph_rate: float = 0.5, duplicate_rate: float = 0.2, false_positives: tuple[int, int] = (0, 3),
                      all_null_rate: float = 0.05, skip_video_rate: float = 0.1, unknown_category_rate: float = 0.0,
                      length_error_rate: float = 0.0, score_decimals: int | None = 2) -> list[dict]:
    """A YouTube-VIS results list for ``gt`` (a ``random_gt``-style dict).

    Per ground-truth track (crowd included): missed with ``miss_rate``; otherwise
    one prediction (and with ``duplicate_rate`` a second, noisier one) whose masks
    are shifted by up to ``max_shift`` pixels and dilated or eroded with
    ``morph_rate``; frames dropped to null with ``frame_drop_rate``; null ground-truth
    frames predicted anyway with ``extra_frame_rate``; the class replaced with
    ``wrong_class_rate``. Per video: ``false_positives`` (inclusive range) random
    blobs, an all-null prediction with ``all_null_rate``, no predictions at all with
    ``skip_video_rate``. ``unknown_category_rate`` uses a category the ground truth
    does not list; ``length_error_rate`` makes a segmentation list one or two
    frames short or long. Scores grow with the video IoU to the source track and
    are rounded to ``score_decimals``. The list comes shuffled.
    """
    rng = np.random.default_rng(seed)
    knobs = dict(miss_rate=miss_rate, wrong_class_rate=wrong_class_rate, frame_drop_rate=frame_drop_rate,
                 extra_frame_rate=extra_frame_rate, max_shift=max_shift, morph_rate=morph_rate,
                 duplicate_rate=duplicate_rate)
    category_ids = [c["id"] for c in gt["categories"]]
    by_video: dict = {}
    for ann in gt.get("annotations", []):
        by_video.setdefault(ann["video_id"], []).append(ann)
    results = []
    for video in sorted(gt["videos"], key=lambda v: v["id"]):
        if rng.random() < skip_video_rate:
            continue
        anns = by_video.get(video["id"], [])
        results += [p for ann in anns for p in _track_predictions(rng, ann, video, category_ids, knobs)]
        num_false = int(rng.integers(false_positives[0], false_positives[1] + 1))
        results += [_false_positive(rng, video, category_ids) for _ in range(num_false)]
        if rng.random() < all_null_rate:
            category = category_ids[int(rng.integers(len(category_ids)))]
            results.append(_prediction(video, category, rng.random(), [None] * video["length"]))
    for pred in results:
        _maybe_corrupt(rng, pred, category_ids, unknown_category_rate, length_error_rate)
        if score_decimals is not None:
            pred["score"] = round(pred["score"], score_decimals)
    return [results[i] for i in rng.permutation(len(results))]


def _track_predictions(rng, ann: dict, video: dict, category_ids: list, knobs: dict) -> list[dict]:
    if rng.random() < knobs["miss_rate"]:
        return []
    gt_masks = [masks.decode(s).astype(bool) if s else None for s in ann["segmentations"]]
    copies = 2 if rng.random() < knobs["duplicate_rate"] else 1
    preds = []
    for copy in range(copies):
        pred_masks = _jitter_track(rng, gt_masks, knobs, noise=1 + copy)
        category = ann["category_id"]
        if rng.random() < knobs["wrong_class_rate"]:
            category = category_ids[int(rng.integers(len(category_ids)))]
        score = 0.6 * _video_iou(pred_masks, gt_masks) / (1 + copy) + 0.4 * rng.random()
        segmentations = [masks.encode(m) if m is not None else None for m in pred_masks]
        preds.append(_prediction(video, category, score, segmentations))
    return preds


def _jitter_track(rng, gt_masks: list, knobs: dict, noise: int) -> list:
    """Per-frame masks of a prediction of one track (``None`` for a null frame)."""
    present = [f for f, m in enumerate(gt_masks) if m is not None]
    shift = rng.integers(-knobs["max_shift"] * noise, knobs["max_shift"] * noise + 1, size=2)
    out = []
    for f, mask in enumerate(gt_masks):
        if mask is None and present and rng.random() < knobs["extra_frame_rate"]:
            mask = gt_masks[min(present, key=lambda p: abs(p - f))]  # the object is still there
        if mask is None or rng.random() < knobs["frame_drop_rate"]:
            out.append(None)
            continue
        wobble = rng.integers(-1, 2, size=2) if knobs["max_shift"] else 0
        mask = masks.shift_mask(mask, *(shift + wobble))
        if rng.random() < knobs["morph_rate"]:
            morph = ndimage.binary_dilation if rng.random() < 0.5 else ndimage.binary_erosion
            mask = morph(mask, iterations=int(rng.integers(1, 1 + noise)))
        out.append(mask)
    return out


def _video_iou(pred_masks: list, gt_masks: list) -> float:
    inter = union = 0
    for p, g in zip(pred_masks, gt_masks):
        if p is not None and g is not None:
            inter += int((p & g).sum())
            union += int((p | g).sum())
        elif p is not None or g is not None:
            union += int((p if g is None else g).sum())
    return inter / union if union else 0.0


def _false_positive(rng, video: dict, category_ids: list) -> dict:
    height, width = video["height"], video["width"]
    kind = "ellipse" if rng.random() < 0.5 else "box"
    center = rng.uniform([0, 0], [height, width])
    half = np.array([height, width]) * rng.uniform(0.03, 0.3, size=2)
    segs = [masks.encode(blob_mask(kind, center, half, height, width)) if rng.random() < 0.7 else None
            for _ in range(video["length"])]
    return _prediction(video, category_ids[int(rng.integers(len(category_ids)))], 0.5 * rng.random(), segs)


def _prediction(video: dict, category_id: int, score: float, segmentations: list) -> dict:
    return {"video_id": video["id"], "category_id": int(category_id), "score": float(min(max(score, 0.0), 1.0)),
            "segmentations": segmentations}


def _maybe_corrupt(rng, pred: dict, category_ids: list, unknown_category_rate: float, length_error_rate: float) -> None:
    if rng.random() < unknown_category_rate:
        pred["category_id"] = max(category_ids) + 1000
    if rng.random() < length_error_rate:
        change = int(rng.choice([-2, -1, 1, 2]))
        segs = pred["segmentations"]
        pred["segmentations"] = segs[:change] if change < 0 else segs + segs[-1:] * change
