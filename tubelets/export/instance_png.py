"""A run's tubelets as instance label images: ``tubelets export RUN_FOLDER DEST --format instance-png [--gt GT]``.

For a complete VIS run, writes (the format: :mod:`tubelets.io.instance_png`)::

    DEST/<video>/<frame:05d>.png   uint16 [H, W]: 0 background, category_id * 1000 + instance
    DEST/index.json                each value's tubelet, category and score; the categories' names; what was left out

* **Frames**: one PNG per decoded frame (the table's ``frame``) of every video with a tubelet row, of the
  table's frame size. With ``io.stride`` 1 and no ``io.fps`` (the defaults; every evaluate run) that is the
  source frame; otherwise ``index.json`` gives each frame's ``source_frame`` where a tubelet covers it.
* **<video>**: the video's name, as prompts name it (a data set's name, a file's name without extension); two
  inputs of one name get their unique file stem (``cat-<16 hex>``) instead. ``index.json`` maps key to folder.
* **Values**: tubelets scoring below ``min_score`` are left out; the others are numbered 1, 2, ... by tubelet id
  within their video, so a tubelet keeps one value in every frame, ``category_id * 1000 + number``.
* **Overlaps**: the higher-scored tubelet has the pixel (equal scores: the lower tubelet id).
* A video whose tubelets file has no row (it has no tubelet) has no recorded frame size: it gets no PNG and is
  listed in ``index.json``'s ``skipped``.

With ``gt_url``, a folder in the same format, the label images are scored while they are written
(:mod:`tubelets.metrics.class_iou`) over the ground truth's frames: a ground-truth frame without a label image
(a video or frame the run does not have) counts as predicted background; a label image without a ground-truth
frame is not scored. The rows go to the run's metrics table as ``metrics/class_iou-<digest>.parquet``, one file
per ground truth and ``min_score``, never overwritten. DEST must be new or empty: an export never overwrites.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections import Counter
from typing import Iterable, Iterator, Mapping, Optional

import numpy as np
import pyarrow.parquet as pq

import tubelets
from tubelets import masks, runs, tables
from tubelets.errors import ConfigError, DatasetError, TubeletsError
from tubelets.export import DEFAULT_MIN_SCORE
from tubelets.io.files import url_to_fs
from tubelets.io.instance_png import (INDEX_FILE, MAX_INSTANCE, InstancePngFolder, encode_png, frame_file_name,
                                     instance_value)
from tubelets.io.prompts import video_name_from_url
from tubelets.metrics.class_iou import ClassIoU, class_iou_rows

WRITE_CHUNK = 64  # PNGs written together: concurrent uploads on a bucket, a bounded amount of encoded bytes held


class ExportError(TubeletsError):
    """A run that cannot be exported as asked: not a complete VIS run, DEST not empty, a value that does not fit."""


@dataclasses.dataclass(frozen=True)
class Instance:
    """One kept tubelet as a label value of its video."""

    value: int  # category_id * 1000 + its number in the video
    tubelet_id: int
    category_id: int
    category_name: str
    score: float


@dataclasses.dataclass
class VideoLabels:
    """One video of a run as label images: its geometry, its instances (by value) and the painting order."""

    key: str  # the tubelets table's ``video``
    folder: str  # DEST/<folder>/
    length: int  # decoded frames
    height: int
    width: int
    instances: list[Instance]
    painted: list[tuple[int, list[dict]]]  # (value, the tubelet's ``frames`` entries), best score first
    source_frames: list[Optional[int]]  # per frame, the source index where a tubelet covers the frame
    category_names: dict[int, str]  # of every tubelet row of the video, kept or not

    def label_maps(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(frame, uint16 [H, W])`` for every frame, in order; the best-scored instance is painted first and keeps
        its pixels. One frame at a time: a long video's maps are never held together."""
        by_frame: dict[int, list[tuple[int, str]]] = {}
        for value, entries in self.painted:
            for entry in entries:
                by_frame.setdefault(entry["frame"], []).append((value, entry["rle"]))
        for frame in range(self.length):
            label_map = np.zeros((self.height, self.width), np.uint16)
            for value, counts in by_frame.get(frame, []):
                mask = masks.decode({"size": [self.height, self.width], "counts": counts}).astype(bool)
                label_map[mask & (label_map == 0)] = value
            yield frame, label_map

    def index_entry(self) -> dict:
        """The video's entry of ``index.json``."""
        entry = {"video": self.key, "folder": self.folder, "frames": self.length, "height": self.height,
                 "width": self.width, "instances": [dataclasses.asdict(item) for item in self.instances]}
        if any(source is not None and source != frame for frame, source in enumerate(self.source_frames)):
            entry["source_frames"] = self.source_frames
        return entry


def video_labels(key: str, folder: str, rows: list[dict], min_score: float) -> VideoLabels:
    """A video's tubelet rows as label images: those scoring ``min_score`` or more, numbered by tubelet id."""
    length, height, width, source_frames = _geometry(key, rows)
    kept = sorted((row for row in rows if row["score"] >= min_score), key=lambda row: row["tubelet_id"])
    if len(kept) > MAX_INSTANCE:
        raise ExportError(f"video {key!r} keeps {len(kept)} tubelets scoring {min_score} or more, more than the "
                          f"{MAX_INSTANCE} instances a label value numbers: raise --min-score")
    instances = [Instance(_value(key, row, number), int(row["tubelet_id"]), int(row["category_id"]),
                          str(row["category_name"]), float(row["score"])) for number, row in enumerate(kept, start=1)]
    best_first = sorted(zip(instances, kept), key=lambda pair: (-pair[0].score, pair[0].tubelet_id))
    names = {int(row["category_id"]): str(row["category_name"]) for row in rows}
    return VideoLabels(key, folder, length, height, width, instances,
                       [(item.value, row["frames"]) for item, row in best_first], source_frames, names)


def _value(key: str, row: Mapping, number: int) -> int:
    try:
        return instance_value(int(row["category_id"]), number)
    except ValueError as error:
        raise ExportError(f"video {key!r}, tubelet {row['tubelet_id']}: {error}") from None


def _geometry(key: str, rows: list[dict]) -> tuple[int, int, int, list[Optional[int]]]:
    """``(length, height, width, source frames)`` of a video, on which all its rows must agree."""
    lengths = {int(row["video_length"]) for row in rows}
    sizes = {(int(entry["height"]), int(entry["width"])) for row in rows for entry in row["frames"]}
    if len(lengths) != 1 or len(sizes) != 1:
        raise ExportError(f"video {key!r}: its tubelets do not agree on one length {sorted(lengths)} and one frame "
                          f"size {sorted(sizes)}")
    length, (height, width) = lengths.pop(), sizes.pop()
    source_frames: list[Optional[int]] = [None] * length
    for entry in (entry for row in rows for entry in row["frames"]):
        if not 0 <= entry["frame"] < length:
            raise ExportError(f"video {key!r}: a tubelet has frame {entry['frame']}, the video {length} frames")
        source_frames[entry["frame"]] = int(entry["source_frame"])
    return length, height, width, source_frames


def folder_names(keys: Iterable[str]) -> dict[str, str]:
    """``{video key: folder}``: its name (see the module docstring), or its unique file stem where names clash."""
    names = {key: video_name_from_url(key) for key in keys}
    clashes = Counter(names.values())
    return {key: name if clashes[name] == 1 and name and not name.startswith(".") else runs.video_file_stem(key)
            for key, name in names.items()}


def complete_run(run_folder: str) -> tuple[str, str, dict]:
    """``(OUTPUT, run id, manifest)`` of a complete VIS run's folder; a one-line ``ExportError`` otherwise."""
    if not runs.is_run_folder(run_folder):
        raise ExportError(f"{run_folder} is not a run folder (no manifest.json): give OUTPUT/<run_id> of a "
                          f"complete run")
    output_url, run_id = runs.runs_root(run_folder), run_folder.rstrip("/").rpartition("/")[2]
    manifest = runs.read_manifest(output_url, run_id) or {}
    info = runs.RunInfo.from_manifest(run_id, manifest)
    if not info.complete:
        raise ExportError(f"{info.describe()}: export reads complete runs only")
    task = runs.run_task(manifest)
    if task != "vis":
        raise ExportError(f"run {run_id} is a {task} run: its objects have no category to label; its frames are "
                          f"DAVIS palette PNGs already, under {run_folder.rstrip('/')}/Annotations/480p/")
    return output_url, run_id, manifest


def check_new_folder(dest_url: str) -> None:
    """DEST must not exist, or be an empty folder: an export never overwrites."""
    fs, path = url_to_fs(dest_url)
    if fs.isfile(path) or (fs.isdir(path) and fs.ls(path, detail=False)):
        raise ExportError(f"{dest_url} exists already and holds files: an export never overwrites; give a new folder")


def run_videos(output_url: str, run_id: str, min_score: float) -> tuple[Iterator[VideoLabels], list[str]]:
    """The run's videos as label images, one file read at a time, and the stems of the videos with no tubelet."""
    fs, files = tables.table_files(output_url, [run_id], ["tubelets"])
    keys = {path: sorted(set(pq.read_table(path, columns=["video"], filesystem=fs).column("video").to_pylist()))
            for path in files["tubelets"]}
    folders = folder_names(key for file_keys in keys.values() for key in file_keys)
    skipped = [runs.stem_of_file(path) for path, file_keys in keys.items() if not file_keys]

    def videos() -> Iterator[VideoLabels]:
        for path, file_keys in keys.items():
            if not file_keys:
                continue
            rows = pq.read_table(path, filesystem=fs).to_pylist()  # a run from before per-video files: all videos
            for key in file_keys:
                yield video_labels(key, folders[key], [row for row in rows if row["video"] == key], min_score)

    return videos(), skipped


class GroundTruthScoring:
    """Scores label images against a ground-truth folder of the same format, as they are written (class IoU).

    Opening it lists the ground truth's videos, so a wrong folder fails before anything is written.
    """

    def __init__(self, gt_url: str):
        self.gt_url = canonical_url(gt_url)  # the metrics rows' ``dataset``
        self.folder = InstancePngFolder(gt_url)
        self.unscored = set(self.folder.videos())
        self.num_videos = len(self.unscored)
        self.scores = ClassIoU()
        self.num_gt_instances = 0
        self.num_predictions = 0

    def passing(self, labels: VideoLabels, label_maps: Iterator[tuple[int, np.ndarray]]
                ) -> Iterator[tuple[int, np.ndarray]]:
        """``label_maps`` passed through, each scored against the ground-truth frame of the same number."""
        if labels.folder not in self.unscored:
            yield from label_maps  # no ground truth for this video: written, not scored
            return
        self.unscored.discard(labels.folder)
        self.num_predictions += len(labels.instances)
        truth = self._truth(labels.folder)
        pending = next(truth, None)
        for frame, label_map in label_maps:
            if pending is not None and pending[0] == frame:
                self._add(label_map, pending, labels.folder)
                pending = next(truth, None)
            yield frame, label_map
        for item in itertools.chain([pending] if pending is not None else [], truth):
            self._add(np.zeros_like(item[1]), item, labels.folder)  # labelled past the run's last frame

    def finish(self) -> ClassIoU:
        """Score the ground-truth videos the run has no label image of (as background); the accumulated IoU."""
        for video in sorted(self.unscored):
            for item in self._truth(video):
                self._add(np.zeros_like(item[1]), item, video)
        self.unscored.clear()
        return self.scores

    def _truth(self, video: str) -> Iterator[tuple[int, np.ndarray]]:
        values: set[int] = set()
        for frame, label_map in self.folder.iter_frames(video):
            values.update(np.flatnonzero(np.bincount(label_map.ravel())).tolist())
            yield frame, label_map
        self.num_gt_instances += len(values - {0})

    def _add(self, predicted: np.ndarray, item: tuple[int, np.ndarray], video: str) -> None:
        frame, truth = item
        if predicted.shape != truth.shape:
            raise DatasetError(f"{self.folder.root_url}/{video}: ground-truth frame {frame} is {truth.shape[1]}x"
                               f"{truth.shape[0]}, the run's frames {predicted.shape[1]}x{predicted.shape[0]} (W x H)")
        self.scores.add(predicted, truth)

    def counts(self) -> dict[str, int]:
        return {"num_videos": self.num_videos, "num_gt_instances": self.num_gt_instances,
                "num_predictions": self.num_predictions}


@dataclasses.dataclass
class ExportSummary:
    """What an export wrote; with ground truth, the class IoU rows and where they went."""

    run_id: str
    dest_url: str
    min_score: float
    videos: int
    frames: int
    instances: int
    skipped: list[str]
    class_iou_rows: list[dict] = dataclasses.field(default_factory=list)
    metrics_url: Optional[str] = None

    def lines(self) -> list[str]:
        """Messages for stderr."""
        lines = [f"wrote {self.frames} label images of {self.videos} videos ({self.instances} instances scoring "
                 f"{self.min_score} or more) of run {self.run_id} to {self.dest_url}"]
        if self.skipped:
            lines.append(f"{len(self.skipped)} videos without a tubelet have no label images (their frame size is not "
                         f"recorded): {', '.join(self.skipped[:3])}{' ...' if len(self.skipped) > 3 else ''}")
        if self.metrics_url:
            lines.append(f"class IoU rows in {self.metrics_url} (tubelets query ... WHERE scope = 'class_iou')")
        return lines

    def results(self) -> str:
        """The class IoU as a text table for stdout, mean last; empty without ground truth."""
        if not self.class_iou_rows:
            return ""
        mean, *per_class = self.class_iou_rows
        cells = [("category", "IoU"), *((f"{row['category_id']} {row['category_name']}", f"{row['iou']:.4f}")
                                        for row in per_class),
                 ("mean", "-" if mean["iou"] is None else f"{mean['iou']:.4f}")]
        return "".join(f"{label:<32} {value}\n" for label, value in cells)


def class_iou_url(output_url: str, run_id: str, gt_url: str, min_score: float) -> str:
    """Where the run's class IoU rows against ``gt_url`` at ``min_score`` go: one file per pair, named by a digest."""
    digest = hashlib.sha1(f"{canonical_url(gt_url)}\n{min_score!r}".encode()).hexdigest()[:16]
    return f"{tables.table_folder(output_url, run_id, 'metrics')}/class_iou-{digest}.parquet"


def canonical_url(url: str) -> str:
    """``url`` with its protocol and an absolute path (``gt`` -> ``file:///home/me/gt``): one name per folder."""
    fs, path = url_to_fs(url)
    return fs.unstrip_protocol(path.rstrip("/"))


def export(run_folder: str, dest_url: str, min_score: float = DEFAULT_MIN_SCORE,
           gt_url: Optional[str] = None) -> ExportSummary:
    """Write the complete run at ``run_folder`` as label images under ``dest_url``; score them against ``gt_url``.

    Everything that can be checked is checked before the first PNG: the run, ``min_score`` (0..1), that DEST is
    new, that the ground truth lists videos and that the run has no class IoU against it at ``min_score`` yet.
    """
    output_url, run_id, manifest = complete_run(run_folder)
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"--min-score is a tubelet score, 0..1; got {min_score}")
    check_new_folder(dest_url)
    scoring = GroundTruthScoring(gt_url) if gt_url else None
    metrics_url = class_iou_url(output_url, run_id, gt_url, min_score) if gt_url else None
    if metrics_url:
        _check_not_scored(metrics_url, run_id, gt_url, min_score)
    videos, skipped = run_videos(output_url, run_id, min_score)
    try:
        entries, names, frames = _write_videos(videos, dest_url, scoring)
        if scoring:
            scoring.finish()
    except TubeletsError as error:  # a malformed ground-truth frame, found as it is read
        raise ExportError(f"{error}; {dest_url} holds a partial export (no {INDEX_FILE}): remove it to export "
                          f"again") from error
    _write_index(dest_url, run_folder, run_id, min_score, entries, names, skipped)
    summary = ExportSummary(run_id, dest_url, min_score, len(entries), frames,
                            sum(len(entry["instances"]) for entry in entries), skipped)
    if scoring:
        summary.class_iou_rows = _write_class_iou(scoring, manifest, names, min_score, metrics_url)
        summary.metrics_url = metrics_url
    return summary


def _check_not_scored(metrics_url: str, run_id: str, gt_url: str, min_score: float) -> None:
    fs, path = url_to_fs(metrics_url)
    if fs.exists(path):
        raise ExportError(f"run {run_id} has class IoU rows against {gt_url} at --min-score {min_score} already "
                          f"({metrics_url}): a run's rows are never overwritten; delete that file to score again")


def _write_videos(videos: Iterator[VideoLabels], dest_url: str,
                  scoring: Optional[GroundTruthScoring]) -> tuple[list[dict], dict[int, str], int]:
    """Every video's PNGs (scored on the way); ``(index entries, the run's category names, frames written)``."""
    fs, root = url_to_fs(dest_url)
    entries, names, frames = [], {}, 0
    for labels in videos:
        label_maps = labels.label_maps()
        if scoring:
            label_maps = scoring.passing(labels, label_maps)
        folder = f"{root.rstrip('/')}/{labels.folder}"
        fs.makedirs(folder, exist_ok=True)
        for chunk in _chunks(label_maps, WRITE_CHUNK):
            fs.pipe({f"{folder}/{frame_file_name(frame)}": encode_png(label_map) for frame, label_map in chunk})
            frames += len(chunk)
        entries.append(labels.index_entry())
        names.update(labels.category_names)
    return entries, names, frames


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _write_index(dest_url: str, run_folder: str, run_id: str, min_score: float, entries: list[dict],
                 names: Mapping[int, str], skipped: list[str]) -> None:
    """``DEST/index.json``, written after the PNGs: a folder with an index is a finished export."""
    index = {"format": "instance-png", "value": "category_id * 1000 + instance, 0 background", "run_id": run_id,
             "run_folder": run_folder, "min_score": min_score, "tubelets_version": tubelets.__version__,
             "categories": {str(category): name for category, name in sorted(names.items())}, "videos": entries,
             "skipped": [{"file": f"tubelets/{stem}.parquet", "reason": "no tubelet: frame size not recorded"}
                         for stem in skipped]}
    fs, root = url_to_fs(dest_url)
    fs.makedirs(root, exist_ok=True)
    fs.pipe_file(f"{root.rstrip('/')}/{INDEX_FILE}", (json.dumps(index, indent=1) + "\n").encode())


def _write_class_iou(scoring: GroundTruthScoring, manifest: Mapping, names: Mapping[int, str], min_score: float,
                     metrics_url: str) -> list[dict]:
    """The rows of a finished scoring (category names: the run's, else the ground truth's), written exclusively to
    ``metrics_url``; returns them."""
    tracker = str(((manifest.get("config") or {}).get("tracker") or {}).get("name", ""))
    rows = class_iou_rows(scoring.scores, scoring.gt_url, tracker, {**scoring.folder.category_names(), **names},
                          scoring.counts())
    run_id = manifest["run_id"]
    schema = tables.with_provenance(tables.METRICS, run_id, config_hash=str(manifest.get("config_hash") or ""),
                                    checkpoint_id=str(manifest.get("checkpoint_id") or ""), gt=scoring.gt_url,
                                    min_score=repr(min_score))
    folder, _, file_name = metrics_url.rpartition("/")
    # Exclusive: never over another scoring's rows, even one finished meanwhile.
    tables.write_table_file(folder, file_name.removesuffix(".parquet"), rows, schema, run_id, exclusive=True)
    return rows
