"""Binary masks as COCO run-length encodings (RLE), through pycocotools.

Two RLE forms cross the package boundary:

* *JSON RLE*: ``{"size": [H, W], "counts": str}``, the compressed form that
  YouTube-VIS results files and our Parquet tables store.
* *uncompressed RLE*: ``{"size": [H, W], "counts": [int, ...]}``, which some
  ground-truth files use (column-major run lengths, starting with zeros).

Everything here accepts either and returns JSON RLE, so callers never see the
``bytes`` counts that pycocotools works with internally.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from pycocotools import mask as coco_mask

JsonRle = dict


def encode(mask: np.ndarray) -> JsonRle:
    """Encode a binary mask ``(H, W)`` (any dtype, non-zero is foreground)."""
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    rle = coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def to_coco(rle: JsonRle) -> dict:
    """The pycocotools form of a JSON or uncompressed RLE (``counts`` as bytes)."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        return coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [height, width], "counts": counts}


def normalize(rle: JsonRle) -> JsonRle:
    """Any accepted RLE form, as compressed JSON RLE."""
    coco = to_coco(rle)
    return {"size": list(coco["size"]), "counts": coco["counts"].decode("ascii")}


def decode(rle: JsonRle) -> np.ndarray:
    """Decode to a ``uint8`` mask of shape ``(H, W)`` with values 0/1."""
    return coco_mask.decode(to_coco(rle))


def area(rle: JsonRle) -> int:
    """Foreground pixel count."""
    return int(coco_mask.area(to_coco(rle)))


def bbox(rle: JsonRle) -> list[float]:
    """Tight box ``[x, y, w, h]`` in pixels (all zeros for an empty mask)."""
    return [float(v) for v in coco_mask.toBbox(to_coco(rle))]


def merge(rles: Iterable[JsonRle], intersect: bool = False) -> JsonRle:
    """Union (or intersection) of masks of the same size."""
    merged = coco_mask.merge([to_coco(r) for r in rles], intersect=intersect)
    return {"size": list(merged["size"]), "counts": merged["counts"].decode("ascii")}


def shift_mask(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` (an array) moved by ``dy`` rows and ``dx`` columns; pixels moved out are lost."""
    height, width = mask.shape
    out = np.zeros_like(mask)
    if abs(dy) >= height or abs(dx) >= width:
        return out
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        mask[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def shift(rle: JsonRle, dx: int, dy: int) -> JsonRle:
    """The mask moved ``dx`` pixels right and ``dy`` down (x first, as in boxes); what leaves the frame is cut off."""
    return encode(shift_mask(decode(rle), dy, dx))


def iou_matrix(predictions: Sequence[JsonRle], targets: Sequence[JsonRle]) -> np.ndarray:
    """Pairwise mask IoU, shape ``(len(predictions), len(targets))``."""
    if not predictions or not targets:
        return np.zeros((len(predictions), len(targets)))
    pred = [to_coco(r) for r in predictions]
    gt = [to_coco(r) for r in targets]
    return np.asarray(coco_mask.iou(pred, gt, [0] * len(gt)), dtype=np.float64).reshape(len(pred), len(gt))
