"""Random access to a decoded video's frames with bounded memory.

Trackers that look at pixels walk a video forward and backward from many
starting frames. ``VideoFrames`` decodes it in windows of consecutive frames on
demand and keeps only the few most recently used windows, so a long video is
never held whole, and a tracker that never asks for a frame costs nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import numpy as np

from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.davis import DavisDataset
from tubelets.io.video import iter_frames
from tubelets.records import VideoMeta


class VideoFrames:
    """``frames[position]`` -> RGB uint8 ``[H, W, 3]`` of a decoded video described by ``VideoMeta``.

    ``position`` is the decoded position (``VideoMeta`` conventions); frames come
    back exactly as the pipeline's decoder produced them (same source frames,
    same ``max_size`` resize). At most ``window * cached_windows`` frames are held.
    """

    def __init__(self, meta: VideoMeta, max_size: Optional[int] = None, window: int = 32, cached_windows: int = 2):
        if meta.url is None:
            raise ValueError(f"video {meta.key!r} has no source url to read frames from")
        self._meta = meta
        self._max_size = max_size
        self._window = max(1, int(window))
        self._cached_windows = max(1, int(cached_windows))
        self._cache: OrderedDict[int, list[np.ndarray]] = OrderedDict()
        self._sources = list(meta.frame_indices) if meta.frame_indices is not None else list(range(meta.length))
        self._dataset = _frames_dataset(meta)

    def __len__(self) -> int:
        return self._meta.length

    def __getitem__(self, position: int) -> np.ndarray:
        if not 0 <= position < len(self):
            raise IndexError(f"frame {position} outside video {self._meta.key!r} of {len(self)} frames")
        chunk = position // self._window
        if chunk in self._cache:
            self._cache.move_to_end(chunk)
        else:
            self._cache[chunk] = self._decode_window(chunk)
            while len(self._cache) > self._cached_windows:
                self._cache.popitem(last=False)
        return self._cache[chunk][position - chunk * self._window]

    def _decode_window(self, chunk: int) -> list[np.ndarray]:
        wanted = self._sources[chunk * self._window : (chunk + 1) * self._window]
        if self._dataset is not None:
            video = self._meta.key if self._meta.source == "davis" else self._meta.video_id
            return [self._dataset.read_frame(video, index) for index in wanted]
        keep = set(wanted)
        frames = {
            index: frame
            for index, frame in iter_frames(
                self._meta.url, max_size=self._max_size, start=wanted[0], end=wanted[-1] + 1
            )
            if index in keep
        }
        return [frames[index] for index in wanted]


def _frames_dataset(meta: VideoMeta) -> YouTubeVISDataset | DavisDataset | None:
    """The data set a video's frames are read from; None for a video file."""
    if meta.source == "jpeg":
        return YouTubeVISDataset(meta.url)
    if meta.source == "davis":
        return DavisDataset(meta.url)
    return None
