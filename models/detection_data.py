"""YouTube-VIS frames as Mask R-CNN training samples, read through ``YouTubeVISDataset``.

Every ``frame_stride``-th frame of every video is one sample: the frame and the
masks of the instances visible in it (tracks whose segmentation in that frame
is null are skipped). A frame with no instance is kept as a negative.

Several data sets train one model as one (:class:`CombinedFrames`), e.g. a
default and a ``--hard`` Shapes-VIS set, so that a fine-tune on the harder data
keeps seeing the easier one.

Frames are decoded a whole video at a time (``iter_frames``) and kept in a
small least-recently-used cache of videos (``cache_videos``; ``None`` keeps
all, right for Shapes-VIS-sized sets). With ``cache_videos=0`` nothing is
kept and JPEG frames are read one at a time: for sets of thousands of videos
sampled at random, where a cache would rarely hit, each loading process would
otherwise decode a whole video for one frame or keep the whole set in memory.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch

from tubelets import masks as rle
from tubelets.errors import DatasetError
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.models.augment import make_target


@dataclasses.dataclass(frozen=True)
class FrameSample:
    """One training frame: where it is and the JSON RLE masks and category ids of its instances."""

    video_id: int
    frame_index: int
    masks: tuple[dict, ...]
    category_ids: tuple[int, ...]


def index_frames(dataset: YouTubeVISDataset, frame_stride: int = 1) -> list[FrameSample]:
    """Every ``frame_stride``-th frame of every video with its non-null instance masks."""
    samples = []
    for video in dataset.videos:
        tracks = dataset.tracks(video.id)
        for t in range(0, video.length, frame_stride):
            present = [track for track in tracks if track.segmentations[t] is not None]
            samples.append(
                FrameSample(
                    video.id,
                    t,
                    tuple(track.segmentations[t] for track in present),
                    tuple(track.category_id for track in present),
                )
            )
    return samples


class FrameDetectionDataset(torch.utils.data.Dataset):
    """The frames of the YouTube-VIS data set at ``dataset_url`` as detection samples.

    ``dataset[i]`` is ``(image, target)`` without augmentation: ``image``
    ``float32 [3, H, W]`` RGB in ``[0, 1]``, ``target`` as
    :func:`tubelets.models.augment.make_target`. :meth:`raw` gives the
    ``uint8`` arrays the augmentations start from.
    """

    def __init__(self, dataset_url: str, source: str = "jpeg", frame_stride: int = 1, cache_videos: int | None = None):
        self.dataset = YouTubeVISDataset(dataset_url)
        self.source = source
        self.frame_stride = int(frame_stride)
        self.cache_videos = cache_videos
        self.samples = index_frames(self.dataset, self.frame_stride)
        self._cache: OrderedDict[int, dict[int, np.ndarray]] = OrderedDict()

    @property
    def categories(self) -> list[dict]:
        """The data set's ``[{"id", "name"}, ...]``."""
        return self.dataset.categories

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image, masks, labels = self.raw(index)
        return image.float().div_(255.0), make_target(masks, labels)

    def raw(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(image uint8 [3, H, W], masks uint8 [K, H, W], labels int64 [K])`` of sample ``index``."""
        sample = self.samples[index]
        frame = self._frame(sample.video_id, sample.frame_index)
        height, width = frame.shape[:2]
        if sample.masks:
            masks = np.stack([rle.decode(m) for m in sample.masks])
        else:
            masks = np.zeros((0, height, width), dtype=np.uint8)
        image = torch.from_numpy(np.array(frame, dtype=np.uint8)).permute(2, 0, 1).contiguous()
        return image, torch.from_numpy(masks), torch.tensor(sample.category_ids, dtype=torch.int64)

    def _frame(self, video_id: int, frame_index: int) -> np.ndarray:
        if self.cache_videos == 0 and self.source == "jpeg":
            return self.dataset.read_frame(video_id, frame_index)
        frames = self._cache.get(video_id)
        if frames is None:
            frames = dict(self.dataset.iter_frames(video_id, source=self.source, stride=self.frame_stride))
            self._cache[video_id] = frames
            if self.cache_videos is not None and len(self._cache) > self.cache_videos:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(video_id)
        return frames[frame_index]


class CombinedFrames(torch.utils.data.ConcatDataset):
    """Several :class:`FrameDetectionDataset` as one (torch's ``ConcatDataset``), with their :meth:`raw` too.

    The data sets must name their categories alike (the same id, the same
    name), since one model's labels are the category ids.
    """

    def __init__(self, parts: Sequence[FrameDetectionDataset], urls: Sequence[str]):
        super().__init__(parts)
        self._check_categories(urls)

    @property
    def categories(self) -> list[dict]:
        return self.datasets[0].categories

    def raw(self, index: int):
        """:meth:`FrameDetectionDataset.raw` of sample ``index`` of the whole (the same lookup as ``[index]``)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range 0..{len(self) - 1}")
        part = bisect.bisect_right(self.cumulative_sizes, index)
        return self.datasets[part].raw(index - (self.cumulative_sizes[part - 1] if part else 0))

    def _check_categories(self, urls: Sequence[str]) -> None:
        names = [{int(c["id"]): c["name"] for c in part.categories} for part in self.datasets]
        for url, other in zip(urls[1:], names[1:]):
            if other != names[0]:
                raise DatasetError(
                    f"data set {url!r} has categories {other}, but {urls[0]!r} has {names[0]}: "
                    "data sets trained together must share category ids and names"
                )


def open_frames(urls: str | Sequence[str], source: str = "jpeg", frame_stride: int = 1,
                cache_videos: int | None = None):
    """The training frames of one data set URL, or of several as one :class:`CombinedFrames`."""
    if isinstance(urls, str):
        return FrameDetectionDataset(urls, source=source, frame_stride=frame_stride, cache_videos=cache_videos)
    parts = [FrameDetectionDataset(url, source=source, frame_stride=frame_stride, cache_videos=cache_videos)
             for url in urls]
    return parts[0] if len(parts) == 1 else CombinedFrames(parts, list(urls))


# Independent random streams of a training run (see sample_seed); the target ones are the unlabelled
# frames' order and augmentations of a domain adaptation run (tubelets.models.domain_adaptation).
ORDER_STREAM, AUGMENT_STREAM, MODEL_STREAM, INIT_STREAM = 0, 1, 2, 3
TARGET_ORDER_STREAM, TARGET_AUGMENT_STREAM = 4, 5


def batch_indices(step: int, batch_size: int, length: int, seed: int) -> list[int]:
    """Sample indices of training step ``step``: a fresh shuffle of ``range(length)`` every epoch.

    Sample positions ``step * batch_size ...`` run through a stream of
    epochs, each a permutation seeded by ``(seed, epoch)``, so any step's batch
    is known without replaying the ones before (resuming needs only ``step``).
    """
    indices = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, length)
        indices.append(int(_epoch_order(seed, epoch, length)[offset]))
    return indices


@functools.lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, length: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(sample_seed(seed, ORDER_STREAM, epoch))
    return torch.randperm(length, generator=generator)


def sample_seed(seed: int, stream: int, *keys: int) -> int:
    """A 63-bit seed for ``keys`` (e.g. step, slot) in random stream ``stream`` of a run with ``seed``."""
    state = np.random.SeedSequence([seed, stream, *keys]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))
