"""Per-frame mask AP of a detector on a YouTube-VIS data set (COCO-style, pycocotools).

Every frame is one COCO image and every non-null instance mask in it one
ground-truth object; the detector's masks (soft masks thresholded at 0.5) are
scored with ``COCOeval(iouType="segm")``. This measures the proposal model
alone, frame by frame, not the video AP of the full tracker.

Command line: ``tubelets evaluate-detector DATASET [--checkpoint URL]`` (its
arguments are parsed in :mod:`tubelets.cli_models`, which calls :func:`evaluate_checkpoint`).
"""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any, Mapping

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm.auto import tqdm

from tubelets import masks as rle
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.models.inference import detect
from tubelets.models.loading import load_detector

# COCOeval.stats positions (maxDets 100 unless named).
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
MASK_THRESHOLD = 0.5


def evaluate_detector(
    model, dataset_url: str, source: str = "jpeg", stride: int = 1, batch_size: int = 4, progress: bool = False,
    precision: str = "float32",
) -> dict[str, Any]:
    """Per-frame mask AP/AR of ``model`` (eval mode) on every ``stride``-th frame of the data set, its backbone
    at ``precision`` (:func:`~tubelets.models.inference.autocast_dtype`).

    Returns ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10",
    "AR100", "ARs", "ARm", "ARl"}`` as fractions in ``[0, 1]`` (COCOeval's -1,
    "no ground truth in this range", is kept), ``per_category_AP`` (``{name:
    AP}``), and the counts ``frames`` and ``instances`` (ground-truth masks).
    """
    dataset = YouTubeVISDataset(dataset_url)
    images, truths, results = [], [], []
    videos = tqdm(dataset.videos, disable=not progress, desc="evaluate")
    for video in videos:
        frame_ids = {}
        for chunk in _chunks(dataset.iter_frames(video.id, source=source, stride=stride), batch_size):
            for (t, _), detections in zip(chunk, detect(model, [frame for _, frame in chunk], precision)):
                image_id = len(images) + 1
                frame_ids[t] = image_id
                images.append({"id": image_id, "width": video.width, "height": video.height})
                results.extend(detection_records(image_id, detections))
        truths.extend(truth_records(dataset, video.id, frame_ids, first_id=len(truths) + 1))
    stats = coco_mask_ap(images, truths, results, dataset.categories)
    return {**stats, "frames": len(images), "instances": len(truths)}


def evaluate_checkpoint(
    cfg: Mapping[str, Any], dataset_url: str, source: str = "jpeg", stride: int = 1, progress: bool = False,
) -> dict[str, Any]:
    """:func:`evaluate_detector` of the detector ``cfg["detector"]`` names, with the checkpoint it loaded, at its
    ``precision``.

    Returns ``{"checkpoint": URL, "checkpoint_id": ID, **stats, "seconds": evaluation time}``.
    """
    model, info = load_detector(cfg)
    started = time.monotonic()
    stats = evaluate_detector(model, dataset_url, source, stride, progress=progress,
                              precision=cfg["detector"]["precision"])  # as a run detects
    return {"checkpoint": info.url, "checkpoint_id": info.checkpoint_id, **stats,
            "seconds": round(time.monotonic() - started, 1)}


def detection_records(image_id: int, detections: Mapping[str, np.ndarray]) -> list[dict]:
    """COCO result records of one frame's detections (masks thresholded at ``MASK_THRESHOLD``)."""
    return [
        {
            "image_id": image_id,
            "category_id": int(label),
            "score": float(score),
            "segmentation": rle.to_coco(rle.encode(mask >= MASK_THRESHOLD)),
        }
        for label, score, mask in zip(detections["labels"], detections["scores"], detections["masks"])
    ]


def truth_records(dataset: YouTubeVISDataset, video_id: int, frame_ids: Mapping[int, int], first_id: int) -> list:
    """COCO ground-truth records of one video's non-null masks in the evaluated frames."""
    records = []
    for track in dataset.tracks(video_id):
        for t, image_id in frame_ids.items():
            segmentation = track.segmentations[t]
            if segmentation is None:
                continue
            records.append(
                {
                    "id": first_id + len(records),
                    "image_id": image_id,
                    "category_id": track.category_id,
                    "segmentation": rle.to_coco(segmentation),
                    "area": float(rle.area(segmentation)),
                    "bbox": rle.bbox(segmentation),
                    "iscrowd": int(track.iscrowd),
                }
            )
    return records


def coco_mask_ap(images: list, truths: list, results: list, categories: list) -> dict[str, Any]:
    """``COCOeval`` segm stats by name, and ``"per_category_AP"``: ``{name: AP}`` (-1: no ground truth).

    All zeros when there are no detections (pycocotools cannot load none).
    """
    if not results:
        return {**{name: 0.0 for name in STAT_NAMES}, "per_category_AP": {c["name"]: 0.0 for c in categories}}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = {"images": images, "annotations": truths, "categories": [dict(c) for c in categories]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), iouType="segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = {name: float(value) for name, value in zip(STAT_NAMES, evaluation.stats)}
    return {**stats, "per_category_AP": per_category_ap(evaluation, categories)}


def per_category_ap(evaluation: COCOeval, categories: list) -> dict[str, float]:
    """AP over IoU 0.5:0.95 of each category (all areas, 100 detections), from an accumulated ``COCOeval``."""
    # precision: [IoU thresholds, recall points, categories, area ranges, max detections]; -1 where undefined.
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    names = {c["id"]: c["name"] for c in categories}
    scores = {}
    for k, category_id in enumerate(evaluation.params.catIds):
        values = precision[:, :, k]
        values = values[values > -1]
        scores[names[category_id]] = float(values.mean()) if values.size else -1.0
    return scores


def _chunks(iterable, size: int):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
