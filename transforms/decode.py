"""Decode videos into frames keyed by ``(video key, frame)``."""

from __future__ import annotations

import collections
import logging
from typing import Iterator

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.davis import DavisDataset
from tubelets.io.video import iter_frames
from tubelets.records import VideoMeta
from tubelets.transforms.dead_letters import dead_letter
from tubelets.transforms.proposals import detection_chunks

LOG = logging.getLogger(__name__)
META = "meta"
FrameKey = tuple  # (video key: str, frame: int)


class DecodeVideo(beam.DoFn):
    """``VideoInput`` -> ``((key, first frame), RGB uint8 [n, H, W, 3])``: the frames the detector takes, in its
    chunks (:func:`tubelets.transforms.proposals.detection_chunks`: every ``detect_every``-th decoded frame,
    ``frames_per_forward`` a chunk; by default every frame, one a chunk).

    Side outputs: ``meta`` gets one ``(key, VideoMeta)`` once the whole video
    decoded cleanly; ``dead_letters`` gets a row for a video that failed. Chunks
    stream out as they are decoded, so a long video is never held whole; chunks
    of a video that fails part-way have no ``meta`` and are dropped where
    detections and meta are joined. With ``emit_frames=False`` the video is
    still decoded whole (so a corrupt file is caught here) but only ``meta``
    comes out, for stages that read frames themselves
    (:class:`tubelets.io.frames.VideoFrames`).
    """

    def __init__(self, *, stride: int, fps: float | None, max_size: int | None, emit_frames: bool = True,
                 detect_every: int = 1, frames_per_forward: int = 1):
        self._stride = stride
        self._fps = fps
        self._max_size = max_size
        self._emit_frames = emit_frames
        self._detect_every, self._frames_per_forward = detect_every, frames_per_forward

    def setup(self):
        self._videos = Metrics.counter("tubelets", "videos")
        self._frames = Metrics.counter("tubelets", "frames")
        self._failed = Metrics.counter("tubelets", "dead_letters")
        self._datasets: dict[tuple[str, str], YouTubeVISDataset | DavisDataset] = {}  # parse/list a data set once

    def process(self, item) -> Iterator:
        try:
            yield from self._decode(item)
        except Exception as error:  # noqa: BLE001 - any failure of one video must not stop the others
            LOG.warning("video %s goes to dead letters: %s", item.key, error)
            self._failed.inc()
            yield dead_letter(item.key, "decode", error)

    def _decode(self, item) -> Iterator:
        indices: list[int] = []
        shape = None

        def decoded() -> Iterator[np.ndarray]:
            nonlocal shape
            for source_index, frame in self._frames_of(item):
                indices.append(source_index)
                shape = frame.shape
                self._frames.inc()
                yield frame

        if self._emit_frames:
            for first, chunk in detection_chunks(decoded(), self._detect_every, self._frames_per_forward):
                yield (item.key, first), chunk
        else:
            collections.deque(decoded(), maxlen=0)  # decoded whole, nothing kept
        if shape is None:
            raise ValueError(f"no frames decoded from {item.url}")
        self._videos.inc()
        yield beam.pvalue.TaggedOutput(META, (item.key, video_meta(item, indices, shape)))

    def _frames_of(self, item) -> Iterator[tuple[int, np.ndarray]]:
        dataset = None if item.source == "video" else self._dataset(item)
        return input_frames(item, stride=self._stride, fps=self._fps, max_size=self._max_size, dataset=dataset)

    def _dataset(self, item) -> YouTubeVISDataset | DavisDataset:
        if (item.source, item.url) not in self._datasets:
            self._datasets[(item.source, item.url)] = open_dataset(item)
        return self._datasets[(item.source, item.url)]


def open_dataset(item) -> YouTubeVISDataset | DavisDataset | None:
    """The data set whose frames an input names, its folder parsed (a DAVIS or YouTube-VIS one); None for a video
    file. Parsing lists or reads the whole folder: a caller reading several of its videos keeps it."""
    if item.source == "video":
        return None
    return (DavisDataset if item.source == "davis" else YouTubeVISDataset)(item.url)


def input_frames(item, *, stride: int, fps: float | None, max_size: int | None,
                 dataset: YouTubeVISDataset | DavisDataset | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(source index, RGB frame)`` of one input as :class:`DecodeVideo` reads it.

    A video file is decoded (``stride``, ``fps``, ``max_size``); a data set's JPEG frames or DAVIS
    sequence are read from ``dataset`` (its folder, parsed once by the caller), at their own size.
    """
    if item.source == "jpeg":
        return dataset.iter_frames(item.video_id, source="jpeg", stride=stride)
    if item.source == "davis":
        if stride != 1:
            raise ValueError("DAVIS sequences are read frame by frame: io.stride must be 1")
        return dataset.iter_frames(item.key)
    return iter_frames(item.url, stride=stride, fps=fps, max_size=max_size)


def video_meta(item, indices: list[int], shape: tuple[int, ...]) -> VideoMeta:
    """The VideoMeta of an input read whole: its frames' source ``indices`` and their ``shape`` (H, W, 3)."""
    return VideoMeta(
        key=item.key, width=shape[1], height=shape[0], length=len(indices), video_id=item.video_id,
        frame_indices=indices, url=item.url, source=item.source,
    )
