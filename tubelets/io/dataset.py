"""YouTube-VIS style data sets from any fsspec URL, and listing video files.

Layout under ``root_url``::

    instances.json                     videos, categories and (unless a test split) annotations
    JPEGImages/<file_names[t]>         frame t of a video, e.g. ``0a49f5265b/00005.jpg``
    videos/<name>.mp4                  optional: the same frames as one video file

A video's ``name`` is the folder of its frame files (``0a49f5265b``). In
``annotations`` each track has one segmentation per frame (``None`` where the
object is absent), as compressed or uncompressed RLE; both come back as JSON
RLE (``tubelets.masks``). Masks are ``(H, W)`` with H, W the video's size.

The data set object is cheap to build and to pickle: ``instances.json`` is
read on first use, and a pickled copy leaves the loaded index behind.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Iterator

import fsspec
import numpy as np
from PIL import Image, UnidentifiedImageError

from tubelets import masks
from tubelets.errors import DatasetError
from tubelets.io import video as video_io
from tubelets.io.files import GLOB_CHARS, join_url, url_to_fs, with_protocol

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")


@dataclasses.dataclass(frozen=True)
class VideoRecord:
    """One video of the data set; ``file_names[t]`` is frame t under ``JPEGImages/``."""

    id: int
    name: str
    width: int
    height: int
    length: int
    file_names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Track:
    """Ground truth of one object through a video; every list has ``length`` entries.

    ``segmentations[t]``: JSON RLE of size ``[H, W]`` or ``None`` (absent in frame t);
    ``bboxes[t]``: ``[x, y, w, h]`` pixels or ``None``; ``areas[t]``: pixels or ``None``.
    """

    id: int
    video_id: int
    category_id: int
    iscrowd: int
    segmentations: list
    bboxes: list
    areas: list


@dataclasses.dataclass
class _Index:
    videos: list[VideoRecord]
    by_id: dict[int, VideoRecord]
    by_name: dict[str, VideoRecord]
    categories: list[dict]
    annotations: dict[int, list[dict]]  # raw, by video id
    has_annotations: bool


class YouTubeVISDataset:
    """A YouTube-VIS style data set under ``root_url`` (see the module docstring)."""

    def __init__(self, root_url: str, annotations: str = "instances.json"):
        self.root_url = root_url.rstrip("/")
        self.annotations_url = join_url(self.root_url, annotations)
        self._index: _Index | None = None

    def __getstate__(self) -> dict:
        return {"root_url": self.root_url, "annotations_url": self.annotations_url, "_index": None}

    def __repr__(self) -> str:
        return f"YouTubeVISDataset({self.root_url!r}, annotations={self.annotations_url!r})"

    @property
    def videos(self) -> list[VideoRecord]:
        return self._loaded().videos

    @property
    def categories(self) -> list[dict]:
        """``[{"id": int, "name": str}, ...]`` in file order."""
        return self._loaded().categories

    @property
    def has_annotations(self) -> bool:
        """False for a test split (no ``annotations`` key in the file)."""
        return self._loaded().has_annotations

    def video(self, id_or_name: int | str) -> VideoRecord:
        """The video with this id (int) or name (str)."""
        index = self._loaded()
        found = index.by_name.get(id_or_name) if isinstance(id_or_name, str) else index.by_id.get(id_or_name)
        if found is None:
            raise DatasetError(f"{self.annotations_url}: no video {id_or_name!r}")
        return found

    def tracks(self, video_id: int | str) -> list[Track]:
        """Ground-truth tracks of a video (empty for a test split), RLE normalised."""
        record = self.video(video_id)
        return [self._track(record, raw) for raw in self._loaded().annotations.get(record.id, [])]

    def masks(self, video_id: int | str) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth masks bool ``[N, T, H, W]`` and their category ids int64 ``[N]``."""
        record = self.video(video_id)
        tracks = self.tracks(record.id)
        stacked = np.zeros((len(tracks), record.length, record.height, record.width), dtype=bool)
        for n, track in enumerate(tracks):
            for t, rle in enumerate(track.segmentations):
                if rle is not None:
                    stacked[n, t] = masks.decode(rle).astype(bool)
        return stacked, np.array([track.category_id for track in tracks], dtype=np.int64)

    def frame_url(self, video_id: int | str, t: int) -> str:
        return join_url(self.root_url, "JPEGImages", self.video(video_id).file_names[t])

    def video_url(self, video_id: int | str) -> str:
        return join_url(self.root_url, "videos", self.video(video_id).name + ".mp4")

    def iter_frames(
        self, video_id: int | str, source: str = "jpeg", stride: int = 1
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(t, frame)``, frame RGB uint8 ``(H, W, 3)``, for every ``stride``-th frame.

        ``source="jpeg"`` reads ``JPEGImages/<file_names[t]>``; ``source="video"``
        decodes ``videos/<name>.mp4`` (its frame t must be annotated frame t).
        """
        record = self.video(video_id)
        if source == "video":
            return video_io.iter_frames(self.video_url(record.id), stride=stride)
        if source != "jpeg":
            raise ValueError(f"source must be 'jpeg' or 'video', got {source!r}")
        if stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        return (self._read_jpeg(record, t) for t in range(0, record.length, stride))

    def read_frame(self, video_id: int | str, t: int) -> np.ndarray:
        """Frame ``t`` of a video from ``JPEGImages/``, RGB uint8 ``(H, W, 3)``."""
        return self._read_jpeg(self.video(video_id), t)[1]

    def _read_jpeg(self, record: VideoRecord, t: int) -> tuple[int, np.ndarray]:
        url = self.frame_url(record.id, t)
        try:
            with fsspec.open(url, "rb") as f:
                frame = np.asarray(Image.open(f).convert("RGB"))
        except FileNotFoundError:
            raise DatasetError(f"{url}: frame {t} of video {record.name!r} is missing") from None
        except (UnidentifiedImageError, OSError) as error:
            raise DatasetError(f"{url}: frame {t} of video {record.name!r} is not a readable image ({error})")
        if frame.shape[:2] != (record.height, record.width):
            raise DatasetError(
                f"{url}: frame is {frame.shape[1]}x{frame.shape[0]}, the annotations say "
                f"{record.width}x{record.height}"
            )
        return t, frame

    def _loaded(self) -> _Index:
        if self._index is None:
            self._index = _build_index(self.annotations_url, _read_json(self.annotations_url))
        return self._index

    def _track(self, record: VideoRecord, raw: dict) -> Track:
        where = f"{self.annotations_url}: annotation id {raw.get('id')!r} of video {record.name!r}"
        segmentations = [_checked_rle(rle, record, where) for rle in raw["segmentations"]]
        bboxes = raw.get("bboxes") or [None if rle is None else masks.bbox(rle) for rle in segmentations]
        areas = raw.get("areas") or [None if rle is None else float(masks.area(rle)) for rle in segmentations]
        if len(bboxes) != record.length or len(areas) != record.length:
            raise DatasetError(f"{where}: bboxes/areas do not have one entry per frame ({record.length})")
        return Track(
            int(raw.get("id", 0)), record.id, int(raw["category_id"]), int(raw.get("iscrowd", 0)),
            segmentations, list(bboxes), list(areas),
        )


def _read_json(url: str):
    try:
        with fsspec.open(url, "r") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{url}: annotations file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{url}: not valid JSON ({error})") from None


def video_records(url: str, data) -> list[VideoRecord]:
    """The videos of an already parsed ``instances.json`` (``url`` names it in errors), checked as the data set
    checks them: for a reader that parses the file for more than its videos (the ground truth) and should not
    parse it twice."""
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise DatasetError(f"{url}: expected a JSON object with a 'videos' list (YouTube-VIS format)")
    return [_video_record(url, i, entry) for i, entry in enumerate(data["videos"])]


def _build_index(url: str, data) -> _Index:
    videos = video_records(url, data)
    by_id = {v.id: v for v in videos}
    categories = [_category(url, i, entry) for i, entry in enumerate(data.get("categories", []))]
    raw_annotations = data.get("annotations") or []
    if not isinstance(raw_annotations, list):
        raise DatasetError(f"{url}: 'annotations' must be a list")
    category_ids = {category["id"] for category in categories}
    annotations: dict[int, list[dict]] = {}
    for i, entry in enumerate(raw_annotations):
        video_id = _check_annotation(url, i, entry, by_id, category_ids)
        annotations.setdefault(video_id, []).append(entry)
    by_name = {v.name: v for v in videos}
    return _Index(videos, by_id, by_name, categories, annotations, "annotations" in data)


def _video_record(url: str, i: int, entry) -> VideoRecord:
    try:
        file_names = tuple(str(name) for name in entry["file_names"])
        length = int(entry.get("length", len(file_names)))
        record = VideoRecord(
            int(entry["id"]), _video_name(entry, file_names), int(entry["width"]), int(entry["height"]),
            length, file_names,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{url}: videos[{i}] is malformed (missing or bad {error})") from None
    if len(file_names) != length:
        raise DatasetError(f"{url}: videos[{i}] has length {length} but {len(file_names)} file_names")
    return record


def _video_name(entry: dict, file_names: tuple[str, ...]) -> str:
    """The folder of the frame files (YouTube-VIS has no name field), else ``str(id)``."""
    folder = posixpath.dirname(file_names[0]) if file_names else ""
    return str(entry.get("name") or folder or entry["id"])


def _category(url: str, i: int, entry) -> dict:
    try:
        return {"id": int(entry["id"]), "name": str(entry["name"])}
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{url}: categories[{i}] is malformed (missing or bad {error})") from None


def _check_annotation(url: str, i: int, entry, by_id: dict, category_ids: set) -> int:
    """Structural checks of annotations[i]; returns its video id."""
    where = f"{url}: annotations[{i}]"
    if not isinstance(entry, dict) or not {"video_id", "category_id", "segmentations"} <= entry.keys():
        raise DatasetError(f"{where} needs 'video_id', 'category_id' and 'segmentations'")
    record = by_id.get(entry["video_id"])
    if record is None:
        raise DatasetError(f"{where} refers to unknown video id {entry['video_id']!r}")
    if category_ids and entry["category_id"] not in category_ids:
        raise DatasetError(f"{where} refers to unknown category id {entry['category_id']!r}")
    segmentations = entry["segmentations"]
    if not isinstance(segmentations, list) or len(segmentations) != record.length:
        count = len(segmentations) if isinstance(segmentations, list) else "no list of"
        raise DatasetError(f"{where} has {count} segmentations, video {record.name!r} has {record.length} frames")
    return record.id


def _checked_rle(rle, record: VideoRecord, where: str):
    """``rle`` as JSON RLE (or None), checked against the video size."""
    if rle is None:
        return None
    try:
        normal = masks.normalize(rle)
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{where}: a segmentation is not an RLE ({error!r})") from None
    if normal["size"] != [record.height, record.width]:
        raise DatasetError(f"{where}: mask size {normal['size']} is not the video's [{record.height}, {record.width}]")
    return normal


def list_videos(glob_or_folder: str) -> list[str]:
    """Video URLs, sorted, with the protocol of the argument kept.

    Accepts an fsspec glob (``gs://b/x/*.mp4``, ``/data/**/*.mp4``), a folder
    (a YouTube-VIS data set folder gives its ``videos/*``; any other folder its
    video files), or one file. A glob that matches nothing gives ``[]``; a
    folder or file that does not exist raises ``DatasetError``.
    """
    fs, path = url_to_fs(glob_or_folder)
    if any(char in path for char in GLOB_CHARS):
        found = [p for p in fs.glob(path) if fs.isfile(p)]
    elif fs.isdir(path):
        videos_folder = posixpath.join(path, "videos")
        folder = videos_folder if fs.isdir(videos_folder) else path
        found = [p for p in fs.ls(folder, detail=False) if p.lower().endswith(VIDEO_EXTENSIONS) and fs.isfile(p)]
    elif fs.isfile(path):
        found = [path]
    else:
        raise DatasetError(f"{glob_or_folder}: no such file or folder")
    return sorted(with_protocol(glob_or_folder, p) for p in found)
