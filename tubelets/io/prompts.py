"""Object prompts for video object segmentation: files of them, and their checks.

A prompt marks one object on one frame of a video, by a mask or by one point
(``tubelets.records.ObjectPrompt``). Two file forms are read:

* a JSON file, a list of items or ``{"prompts": [...]}``; an item is
  ``{"video": str, "frame": int, "object_id": int, "x": float, "y": float}`` (a point)
  or ``{"video", "frame", "object_id", "mask": RLE}`` (a mask, compressed or
  uncompressed COCO RLE of the frame size);
* a folder of palette PNGs, ``<folder>/<video>/<frame>.png`` or a DAVIS root's
  ``Annotations/480p/<video>/<frame>.png``: each object id in a PNG is a mask
  prompt on the frame its file name numbers, at the object's first appearance.

Points are ``(x, y)`` in continuous pixel coordinates: pixel ``(row r, column c)``
covers ``[c, c + 1) x [r, r + 1)``, so its centre is ``(c + 0.5, r + 0.5)`` and the
pixel under a point is ``point_pixel(point)``. A frame of size ``(H, W)`` holds the
points with ``0 <= x < W`` and ``0 <= y < H``.
"""

from __future__ import annotations

import json
import math
import posixpath
from typing import Iterable, Mapping, Sequence

import fsspec
import numpy as np
from scipy import ndimage

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.io.davis import (
    ANNOTATION_EXTENSION,
    MAX_OBJECT_ID,
    DavisDataset,
    id_map_to_masks,
    list_file_names,
    list_subfolder_names,
    read_palette_png,
)
from tubelets.io.files import join_url, url_to_fs
from tubelets.records import ObjectPrompt

PROMPT_KINDS = ("mask", "point")
REQUIRED_KEYS = ("video", "frame", "object_id")
ITEM_KEYS = frozenset(REQUIRED_KEYS + ("x", "y", "mask"))

Prompts = dict[str, list[ObjectPrompt]]


class PromptError(DatasetError, ValueError):
    """A prompts file or a video's prompts are malformed; the message names the file or video and the item.

    Also a ``ValueError``: to a library caller, bad prompts are a bad argument.
    """


def read_prompts(url: str) -> Prompts:
    """Prompts by video name (sorted), each video's sorted by ``(frame, object_id)``.

    ``url`` is a JSON file or a PNG folder (see the module docstring). Raises
    ``PromptError`` for a missing input, a malformed item, an object prompted
    twice, or an input that holds no prompt at all.
    """
    fs, path = url_to_fs(url)
    if fs.isdir(path):
        prompts = _read_png_folder(url)
    elif fs.isfile(path):
        prompts = _read_json(url)
    else:
        raise PromptError(f"{url}: prompts file or folder not found")
    if not prompts:
        raise PromptError(f"{url}: holds no prompts")
    return prompts


def write_prompts(url: str, prompts: Mapping[str, list[ObjectPrompt]]) -> None:
    """Write ``{"prompts": [...]}`` JSON that ``read_prompts`` reads back to ``prompts``."""
    items = [_item(prompt) for prompt in _sorted_prompts(p for video in prompts.values() for p in video)]
    fs, path = url_to_fs(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    fs.pipe_file(path, json.dumps({"prompts": items}, separators=(",", ":")).encode("utf-8"))


def prompts_from_annotations(dataset: DavisDataset, kind: str = "mask") -> Prompts:
    """One prompt per object of every sequence, on its first annotated frame (evaluation prompts).

    ``kind="mask"`` gives that frame's mask, ``kind="point"`` its ``farthest_interior_point``.
    Sequences without any object are left out.
    """
    if kind not in PROMPT_KINDS:
        raise ValueError(f"kind must be one of {PROMPT_KINDS}, got {kind!r}")
    prompts = {}
    for seq in dataset.sequences():
        id_maps = ((t, dataset.read_annotation(seq, t)) for t in dataset.annotated_frames(seq))
        found = first_appearances(seq, id_maps, kind)
        if found:
            prompts[seq] = found
    return prompts


def first_appearances(video: str, id_maps: Iterable[tuple[int, np.ndarray]], kind: str = "mask") -> list[ObjectPrompt]:
    """A prompt for each object id at its first appearance in ``(frame, uint8 [H, W] id map)``
    pairs given in ascending frame order; sorted by ``(frame, object_id)``."""
    seen: set[int] = set()
    found = []
    for frame, id_map in id_maps:
        for object_id, mask in id_map_to_masks(id_map).items():
            if object_id not in seen:
                seen.add(object_id)
                found.append(_prompt_from_mask(video, object_id, frame, mask, kind))
    return found


def farthest_interior_point(mask: np.ndarray) -> tuple[float, float]:
    """``(x, y)``: the centre of the mask pixel farthest from the mask's outside (the frame's
    outside counts as outside); ties go to the first such pixel in row-major order."""
    # Padding puts background around the frame, so pixels on the frame edge are 1 from outside.
    distance = ndimage.distance_transform_edt(np.pad(np.asarray(mask, dtype=bool), 1))[1:-1, 1:-1]
    if not distance.any():
        raise ValueError("an empty mask has no interior point")
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return (float(col) + 0.5, float(row) + 0.5)


def point_pixel(point: tuple[float, float]) -> tuple[int, int]:
    """``(row, column)`` of the pixel under ``point = (x, y)``."""
    return (math.floor(point[1]), math.floor(point[0]))


def check_prompts(
    prompts_for_video: Sequence[ObjectPrompt], video: str | None, length: int,
    size: tuple[int, int] | None = None, source: str = "",
) -> None:
    """Raise ``PromptError`` unless the prompts fit a video of ``length`` frames: at least one
    prompt, all for ``video`` (``None``: the first prompt's), integer object ids and frames below
    ``length``, one object once, a mask or a finite point. With ``size = (H, W)`` (known before
    decoding from the video's metadata) also masks of that size and points inside the frame;
    without it those wait for whoever reads the frames. ``source`` (a file) prefixes messages."""
    if video is None and prompts_for_video:
        video = prompts_for_video[0].video
    where = f"{source + ': ' if source else ''}video {video!r}"
    if not prompts_for_video:
        raise PromptError(f"{where}: no prompts")
    seen: set[int] = set()
    for prompt in prompts_for_video:
        item = f"{where}: object {prompt.object_id} on frame {prompt.frame}"
        if prompt.video != video:
            raise PromptError(f"{item} belongs to video {prompt.video!r}")
        if not _is_int(prompt.object_id):
            raise PromptError(f"{item}: the object id must be an integer")
        if prompt.object_id in seen:
            raise PromptError(f"{item} is prompted twice")
        seen.add(prompt.object_id)
        _check_prompt_fits(prompt, item, length, size)


def unmatched_videos(prompts: Mapping[str, list[ObjectPrompt]], video_names: Iterable[str]) -> list[str]:
    """Prompted videos that are not among ``video_names``, sorted (for the dead-letter output)."""
    known = set(video_names)
    return sorted(video for video in prompts if video not in known)


def video_name_from_url(url: str) -> str:
    """The name prompts use for a video file: its file name without extension (``gs://b/cat.mp4`` -> ``cat``)."""
    return posixpath.splitext(posixpath.basename(url.rstrip("/")))[0]


def _check_prompt_fits(prompt: ObjectPrompt, item: str, length: int, size: tuple[int, int] | None) -> None:
    if (prompt.mask is None) == (prompt.point is None):
        raise PromptError(f"{item}: needs exactly one of a mask and a point")
    if not _is_int(prompt.frame) or not 0 <= prompt.frame < length:
        raise PromptError(f"{item}: frame is out of range, the video has {length} frames")
    if prompt.point is not None and not _is_point(prompt.point):
        raise PromptError(f"{item}: the point must be two finite numbers (x, y), got {prompt.point!r}")
    if size is None:
        return
    height, width = size
    if prompt.mask is not None and list(prompt.mask["size"]) != [height, width]:
        raise PromptError(f"{item}: mask size {list(prompt.mask['size'])} is not the frame size [{height}, {width}]")
    if prompt.point is not None:
        x, y = prompt.point
        if not (0 <= x < width and 0 <= y < height):
            raise PromptError(f"{item}: point ({x}, {y}) lies outside the {width}x{height} frame")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_point(point) -> bool:
    try:
        x, y = point
        numbers = [isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in (x, y)]
        return all(numbers) and math.isfinite(x) and math.isfinite(y)
    except (TypeError, ValueError):
        return False


def _prompt_from_mask(video: str, object_id: int, frame: int, mask: np.ndarray, kind: str) -> ObjectPrompt:
    if kind == "point":
        return ObjectPrompt(video, object_id, frame, point=farthest_interior_point(mask))
    return ObjectPrompt(video, object_id, frame, mask=masks.encode(mask))


def _sorted_prompts(prompts: Iterable[ObjectPrompt]) -> list[ObjectPrompt]:
    return sorted(prompts, key=lambda p: (p.video, p.frame, p.object_id))


def _grouped(prompts: Iterable[ObjectPrompt]) -> Prompts:
    grouped: Prompts = {}
    for prompt in _sorted_prompts(prompts):
        grouped.setdefault(prompt.video, []).append(prompt)
    return grouped


def _item(prompt: ObjectPrompt) -> dict:
    item = {"video": prompt.video, "frame": int(prompt.frame), "object_id": int(prompt.object_id)}
    if prompt.point is not None:
        item["x"], item["y"] = float(prompt.point[0]), float(prompt.point[1])
    else:
        item["mask"] = masks.normalize(prompt.mask)
    return item


# --- JSON files ---------------------------------------------------------------------------------


def _read_json(url: str) -> Prompts:
    try:
        with fsspec.open(url, "r", encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PromptError(f"{url}: not a valid JSON prompts file ({error})") from None
    prompts = [_parse_item(f"{url}: prompts[{i}]", item) for i, item in enumerate(_json_items(url, data))]
    _check_unique(url, prompts)
    return _grouped(prompts)


def _json_items(url: str, data) -> list:
    if isinstance(data, dict) and set(data) == {"prompts"}:
        data = data["prompts"]
    if not isinstance(data, list):
        raise PromptError(f"{url}: expected a JSON list of prompts or an object {{\"prompts\": [...]}}")
    return data


def _parse_item(where: str, item) -> ObjectPrompt:
    if not isinstance(item, dict):
        raise PromptError(f"{where}: expected an object, got {type(item).__name__}")
    unknown = sorted(set(item) - ITEM_KEYS)
    if unknown:
        raise PromptError(f"{where}: unknown keys {unknown} (accepted: {sorted(ITEM_KEYS)})")
    missing = [key for key in REQUIRED_KEYS if key not in item]
    if missing:
        raise PromptError(f"{where}: missing {missing}")
    video = item["video"]
    if not isinstance(video, str) or not video:
        raise PromptError(f"{where}: 'video' must be a non-empty string, got {video!r}")
    frame = _integer(where, "frame", item["frame"], 0, None)
    object_id = _integer(where, "object_id", item["object_id"], 1, MAX_OBJECT_ID)
    has_point, has_mask = "x" in item or "y" in item, "mask" in item
    if has_point == has_mask:
        raise PromptError(f"{where}: needs exactly one of a point ('x' and 'y') and a 'mask'")
    if has_mask:
        return ObjectPrompt(video, object_id, frame, mask=_checked_mask(where, item["mask"]))
    if not {"x", "y"} <= item.keys():
        raise PromptError(f"{where}: a point needs both 'x' and 'y'")
    point = (_coordinate(where, "x", item["x"]), _coordinate(where, "y", item["y"]))
    return ObjectPrompt(video, object_id, frame, point=point)


def _integer(where: str, key: str, value, low: int, high: int | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise PromptError(f"{where}: '{key}' must be an integer {bounds}, got {value!r}")
    return value


def _coordinate(where: str, key: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise PromptError(f"{where}: '{key}' must be a finite number >= 0 (pixels), got {value!r}")
    return float(value)


def _checked_mask(where: str, rle) -> dict:
    """``rle`` as compressed JSON RLE, once it is known to encode a non-empty mask of its size."""
    size = rle.get("size") if isinstance(rle, dict) else None
    counts = rle.get("counts") if isinstance(rle, dict) else None
    if (
        not isinstance(size, list) or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):  # fmt: skip
        raise PromptError(f"{where}: 'mask' must be an RLE {{\"size\": [H, W], \"counts\": ...}} with H, W > 0")
    if isinstance(counts, list):
        runs_ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts)
        if not runs_ok or sum(counts) != size[0] * size[1]:
            raise PromptError(f"{where}: mask counts must be run lengths >= 0 summing to H*W = {size[0] * size[1]}")
    elif not isinstance(counts, str) or not counts.isascii():
        raise PromptError(f"{where}: mask counts must be a COCO RLE string or a list of run lengths")
    normal = masks.normalize(rle)
    try:
        decoded = masks.decode(normal)
    except ValueError as error:
        raise PromptError(f"{where}: mask counts do not encode a {size[0]}x{size[1]} mask ({error})") from None
    # pycocotools decodes too-short counts into stray memory; a true RLE re-encodes to itself.
    if isinstance(counts, str) and masks.encode(decoded)["counts"] != counts:
        raise PromptError(f"{where}: mask counts do not encode a {size[0]}x{size[1]} mask")
    if not decoded.any():
        raise PromptError(f"{where}: mask is empty")
    return normal


def _check_unique(url: str, prompts: list[ObjectPrompt]) -> None:
    first: dict[tuple[str, int], int] = {}
    for i, prompt in enumerate(prompts):
        key = (prompt.video, prompt.object_id)
        if key in first:
            raise PromptError(
                f"{url}: prompts[{i}] prompts object {prompt.object_id} of video {prompt.video!r} again"
                f" (first in prompts[{first[key]}]); an object has one prompt"
            )
        first[key] = i


# --- PNG folders --------------------------------------------------------------------------------


def _read_png_folder(url: str) -> Prompts:
    """Mask prompts from ``url/<video>/<frame>.png`` or ``url/Annotations/480p/<video>/<frame>.png``."""
    davis_annotations = join_url(url, "Annotations", "480p")
    folder = davis_annotations if list_subfolder_names(davis_annotations) is not None else url
    prompts = {}
    for video in list_subfolder_names(folder) or []:
        found = first_appearances(video, _numbered_id_maps(join_url(folder, video)))
        if found:
            prompts[video] = found
    if not prompts:
        raise PromptError(f"{url}: no prompt PNGs found (expected <folder>/<video>/<frame>.png with object ids)")
    return prompts


def _numbered_id_maps(video_url: str) -> Iterable[tuple[int, np.ndarray]]:
    """``(frame, id map)`` of each ``<frame>.png`` in the folder, ascending by frame."""
    numbered = []
    for name in list_file_names(video_url, (ANNOTATION_EXTENSION,)) or []:
        stem = posixpath.splitext(name)[0]
        if not stem.isdigit():
            raise PromptError(f"{video_url}/{name}: a prompt PNG is named by its frame number, e.g. 00005.png")
        numbered.append((int(stem), f"{video_url}/{name}"))
    for frame, png_url in sorted(numbered):
        try:
            yield frame, read_palette_png(png_url)
        except DatasetError as error:
            raise PromptError(str(error)) from None
