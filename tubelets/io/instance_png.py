"""Instance label images: one 16-bit PNG per frame whose pixel value is ``category_id * 1000 + instance``.

The format of Cityscapes-style ``*_instanceIds.png`` files and of driving-video data sets (Apolloscape). Layout
under a folder (any fsspec URL)::

    <video>/00000.png ...   gray PNG, uint16 [H, W]: 0 background, category_id * 1000 + instance elsewhere
    index.json              optional (``tubelets export`` writes it): category names, which tubelet each value is

* A pixel holds one instance; ``value // 1000`` is its category id (1 or more: a value 1..999 has no category
  and is refused), ``value % 1000`` its instance within the video. ``tubelets export`` numbers instances from 1;
  Cityscapes numbers them from 0, which reads as well.
* Frame ``t`` of a video is the PNG named ``t`` (``00007.png`` is frame 7) when every PNG of the video is named
  by a number, so a folder labelling every 5th frame says which frames those are; otherwise (``aachen_000019_
  instanceIds.png``) it is the ``t``-th PNG in sorted name order. Every frame of a video has one size.
* 16-bit PNGs are written and read with Pillow (mode ``I;16``), as :mod:`tubelets.io.davis` does its palette PNGs;
  an 8-bit gray PNG reads too (all background: its values cannot carry a category).

:class:`InstancePngFolder` reads a folder one frame at a time; :func:`read_instance_pngs` gives every mask at once
(small folders); :func:`to_youtube_vis` turns a folder into the YouTube-VIS ground truth the evaluators take.
"""

from __future__ import annotations

import io
import json
import posixpath
from typing import Iterator, Mapping, Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.io.davis import list_file_names, list_subfolder_names
from tubelets.io.files import join_url, url_to_fs

CATEGORY_FACTOR = 1000  # value = category_id * CATEGORY_FACTOR + instance
MAX_INSTANCE = CATEGORY_FACTOR - 1
MAX_VALUE = int(np.iinfo(np.uint16).max)  # 65535: category ids up to 65 fit (65 only with instances up to 535)
EXTENSION = ".png"
INDEX_FILE = "index.json"
# Pillow's modes of a one-channel gray PNG: 16-bit (in either byte order), 32-bit integers (other writers), 8-bit.
LABEL_MODES = ("I;16", "I;16B", "I;16L", "I", "L")
READ_CHUNK = 64  # frames fetched together: one round trip per chunk on a bucket, a bounded amount of memory


def instance_value(category_id: int, instance: int) -> int:
    """``category_id * 1000 + instance``; a ``ValueError`` where it is not a label value that fits 16 bits."""
    if category_id < 1 or not 1 <= instance <= MAX_INSTANCE:
        raise ValueError(f"a label value needs a category id of 1 or more and an instance 1..{MAX_INSTANCE}, "
                         f"got category {category_id}, instance {instance}")
    value = category_id * CATEGORY_FACTOR + instance
    if value > MAX_VALUE:
        raise ValueError(f"category {category_id} instance {instance} is value {value}, more than a 16-bit PNG holds "
                         f"({MAX_VALUE}): this format carries category ids up to {MAX_VALUE // CATEGORY_FACTOR}")
    return value


def category_map(label_map: np.ndarray) -> np.ndarray:
    """Each pixel's category id (0: background), ``int64`` of the label map's shape."""
    return np.asarray(label_map, dtype=np.int64) // CATEGORY_FACTOR


def frame_file_name(frame: int) -> str:
    """``00007.png``: the file of frame 7 in its video's folder."""
    return f"{frame:05d}{EXTENSION}"


def encode_png(label_map: np.ndarray) -> bytes:
    """A 16-bit gray PNG of ``uint16 [H, W]`` label values."""
    label_map = np.asarray(label_map)
    if label_map.ndim != 2 or label_map.dtype != np.uint16:
        raise ValueError(f"a label map is uint16 [H, W], got {label_map.dtype} {label_map.shape}")
    buffer = io.BytesIO()
    # Little-endian explicitly: Pillow's "I;16" is little-endian whatever the machine's byte order.
    Image.fromarray(label_map.astype("<u2", copy=False)).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes, where: str) -> np.ndarray:
    """The ``uint16 [H, W]`` label values of PNG bytes, checked; ``where`` names the file in errors."""
    try:
        image = Image.open(io.BytesIO(data))
        mode = image.mode
        values = np.array(image) if mode in LABEL_MODES else None
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"{where}: not a readable PNG ({error})") from None
    if values is None:
        davis = " (a DAVIS palette PNG holds object ids, not category * 1000 + instance)" if mode == "P" else ""
        raise DatasetError(f"{where}: PNG mode {mode!r}{davis}; a label image is a one-channel 16-bit gray PNG whose "
                           f"values are category_id * {CATEGORY_FACTOR} + instance")
    check_values(values, where)
    return values.astype(np.uint16)


def check_values(values: np.ndarray, where: str) -> None:
    """Every value is 0 (background) or a category's instance, ``CATEGORY_FACTOR..MAX_VALUE``."""
    bad = values[(values != 0) & ((values < CATEGORY_FACTOR) | (values > MAX_VALUE))]
    if bad.size:
        raise DatasetError(f"{where}: value {int(bad.flat[0])} is not a label value: 0 is background, anything else "
                           f"is category_id * {CATEGORY_FACTOR} + instance with a category id of 1 or more, "
                           f"up to {MAX_VALUE}")


def instance_masks(label_map: np.ndarray) -> dict[int, np.ndarray]:
    """``{value: bool [H, W]}`` for each label value in the map, ascending (no background)."""
    return {int(value): label_map == value for value in np.unique(label_map) if value != 0}


def frame_numbers(names: list[str], where: str) -> dict[int, str]:
    """``{frame: file name}`` of one video's sorted PNG names (see the module docstring)."""
    stems = [posixpath.splitext(name)[0] for name in names]
    if not all(stem.isdigit() for stem in stems):
        return dict(enumerate(names))
    numbered: dict[int, str] = {}
    for stem, name in zip(stems, names):
        if int(stem) in numbered:
            raise DatasetError(f"{where}: {numbered[int(stem)]} and {name} are both frame {int(stem)}")
        numbered[int(stem)] = name
    return dict(sorted(numbered.items()))


class InstancePngFolder:
    """A folder of instance label images (see the module docstring), read one frame at a time.

    Every read error is a one-line ``DatasetError`` naming the folder, the video and, where it applies, the file.
    """

    def __init__(self, root_url: str):
        self.root_url = root_url.rstrip("/") or root_url
        self._frames: dict[str, dict[int, str]] = {}

    def __repr__(self) -> str:
        return f"InstancePngFolder({self.root_url!r})"

    def videos(self) -> list[str]:
        """The video folders, sorted; an error where there is no such folder or it holds none."""
        names = list_subfolder_names(self.root_url)
        if names is None:
            raise DatasetError(f"{self.root_url}: no such folder of instance label images")
        names = [name for name in names if not name.startswith(".")]  # .ipynb_checkpoints and the like
        if not names:
            raise DatasetError(f"{self.root_url}: holds no video folder (<video>/00000.png ...)")
        return names

    def frames(self, video: str) -> dict[int, str]:
        """``{frame: PNG file name}`` of a video, by frame; an error where the video has no PNG."""
        if video not in self._frames:
            names = list_file_names(join_url(self.root_url, video), (EXTENSION,))
            if not names:
                raise DatasetError(f"{self.root_url}: video {video!r} has no PNG "
                                   f"({'no such folder' if names is None else 'empty folder'})")
            self._frames[video] = frame_numbers(names, f"{self.root_url}/{video}")
        return self._frames[video]

    def iter_frames(self, video: str) -> Iterator[tuple[int, np.ndarray]]:
        """``(frame, uint16 [H, W] label values)`` of every PNG of ``video``, by frame; one size per video."""
        fs, folder = url_to_fs(join_url(self.root_url, video))
        items = list(self.frames(video).items())
        size: Optional[tuple[int, int]] = None
        for start in range(0, len(items), READ_CHUNK):
            chunk = items[start:start + READ_CHUNK]
            urls = [join_url(self.root_url, video, name) for _, name in chunk]
            paths = [f"{folder.rstrip('/')}/{name}" for _, name in chunk]
            # Whole files (no byte range), literal paths: concurrent on a bucket, no glob of odd names.
            contents = fs.cat_ranges(paths, None, None, on_error="return")
            for (frame, _), url, data in zip(chunk, urls, contents):
                if isinstance(data, Exception):
                    raise DatasetError(f"{url}: cannot be read ({type(data).__name__}: {data})")
                label_map = decode_png(data, url)
                size = size or label_map.shape
                if label_map.shape != size:
                    raise DatasetError(f"{url}: frame {frame} is {label_map.shape[1]}x{label_map.shape[0]}, the "
                                       f"video's first frame {size[1]}x{size[0]} (W x H)")
                yield frame, label_map

    def category_names(self) -> dict[int, str]:
        """Category names from ``index.json`` where the folder has one (an export), else none."""
        fs, path = url_to_fs(join_url(self.root_url, INDEX_FILE))
        if not fs.isfile(path):
            return {}
        try:
            names = json.loads(fs.cat_file(path)).get("categories") or {}
            return {int(category): str(name) for category, name in names.items()}
        except (ValueError, AttributeError, TypeError) as error:
            raise DatasetError(f"{self.root_url}/{INDEX_FILE}: not an index of instance label images "
                               f"({error})") from None


def read_instance_pngs(root_url: str) -> dict[str, dict[int, dict[int, np.ndarray]]]:
    """``{video: {frame: {value: bool [H, W]}}}`` of a whole folder: every mask in memory, for small folders.

    :class:`InstancePngFolder` reads one frame at a time instead.
    """
    folder = InstancePngFolder(root_url)
    return {video: {frame: instance_masks(label_map) for frame, label_map in folder.iter_frames(video)}
            for video in folder.videos()}


def to_youtube_vis(root_url: str, category_names: Optional[Mapping[int, str]] = None) -> dict:
    """The folder as YouTube-VIS ground truth (``instances.json`` form), what :mod:`tubelets.metrics.vis` scores.

    Videos get ids 1, 2, ... in folder order, each its ``name``; a video is as long as its last labelled frame
    (frames without a PNG have no instance). Each label value of a video is one track: category ``value // 1000``,
    ``instance_value`` the value, ``id`` numbered 1, 2, ... over the folder (annotation ids are unique across
    videos; a value is unique only within its video). Category names: ``category_names``, else the folder's
    ``index.json``, else the id as text.
    """
    folder = InstancePngFolder(root_url)
    names = {**folder.category_names(), **(category_names or {})}
    videos, annotations, categories = [], [], set()
    for video_id, video in enumerate(folder.videos(), start=1):
        length = max(folder.frames(video)) + 1
        tracks: dict[int, list] = {}
        size = (0, 0)
        for frame, label_map in folder.iter_frames(video):
            size = label_map.shape
            for value, mask in instance_masks(label_map).items():
                tracks.setdefault(value, [None] * length)[frame] = masks.encode(mask)
        videos.append({"id": video_id, "name": video, "height": int(size[0]), "width": int(size[1]),
                       "length": length})
        for value, segmentations in sorted(tracks.items()):
            categories.add(value // CATEGORY_FACTOR)
            annotations.append({
                "id": len(annotations) + 1, "video_id": video_id, "category_id": value // CATEGORY_FACTOR,
                "instance_value": value, "iscrowd": 0, "segmentations": segmentations,
                "areas": [None if rle is None else float(masks.area(rle)) for rle in segmentations],
            })
    return {"videos": videos, "annotations": annotations,
            "categories": [{"id": category, "name": names.get(category, str(category))}
                           for category in sorted(categories)]}
