"""Turn the user's INPUT into one element per video, spread over workers.

INPUT is a glob of video files on any fsspec URL (``gs://b/clips/*.mp4``), a
YouTube-VIS data set folder (one holding ``instances.json``), whose videos are
read from ``videos/<name>.mp4`` or from ``JPEGImages/`` frames, or a DAVIS
folder (``JPEGImages/480p/<sequence>/``), whose sequences are read from their
JPEG frames.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Optional, Sequence

import apache_beam as beam
import fsspec

from tubelets.io.dataset import YouTubeVISDataset, list_videos
from tubelets.io.davis import DavisDataset

ANNOTATIONS = "instances.json"


@dataclasses.dataclass(frozen=True)
class VideoInput:
    """What one worker needs to decode one video.

    ``key`` names the video in every output (the data set's video name, or the
    file URL); ``url`` is the video file, or the data set root when ``source``
    is ``"jpeg"``.
    """

    key: str
    url: str
    source: str = "video"  # "video": a video file; "jpeg": a YouTube-VIS data set's frames; "davis": a DAVIS sequence
    video_id: Optional[int] = None


def is_dataset(input_url: str) -> bool:
    """Whether INPUT is a YouTube-VIS data set folder."""
    fs, path = fsspec.core.url_to_fs(input_url)
    return fs.isfile(f"{path.rstrip('/')}/{ANNOTATIONS}")


def is_davis(input_url: str) -> bool:
    """Whether INPUT is a DAVIS layout folder (and not a YouTube-VIS one)."""
    fs, path = fsspec.core.url_to_fs(input_url)
    return not is_dataset(input_url) and fs.isdir(f"{path.rstrip('/')}/JPEGImages/480p")


def dataset_inputs(dataset: YouTubeVISDataset, source: str) -> Iterator[VideoInput]:
    """One input per video of a data set, decoded from its mp4 or from its JPEG frames."""
    for video in dataset.videos:
        url = dataset.video_url(video.id) if source == "video" else dataset.root_url
        yield VideoInput(key=video.name, url=url, source=source, video_id=video.id)


def expand_input(input_url: str, source: str = "video") -> list[VideoInput]:
    """Every video INPUT names, in a stable order."""
    if is_dataset(input_url):
        return list(dataset_inputs(YouTubeVISDataset(input_url), source))
    if is_davis(input_url):
        return [VideoInput(key=name, url=input_url, source="davis") for name in DavisDataset(input_url).sequences()]
    return [VideoInput(key=url, url=url) for url in list_videos(input_url)]


class MatchInputs(beam.PTransform):
    """INPUT -> ``VideoInput`` per video, one element each from the start, so that videos spread over workers.

    INPUT is listed on the launching machine, when the graph is built (the
    launcher lists it anyway to check it and to know the inputs a run must
    account for: pass that listing as ``inputs`` to list it once). A runner
    splits a ``Create`` of many elements from the start: Beam's Dask runner
    2.78 makes one partition per ``--dask_partition_size`` elements
    (``transform_evaluator.py:185-212``) and runs ``Reshuffle`` as a no-op
    (``overrides.py:46-48``), so a one-element ``Create`` that a worker expands
    kept every video in one partition, on one worker, one after the other.
    The Reshuffle stays for the runners that do redistribute (Dataflow).
    """

    def __init__(self, input_url: str, source: str = "video", inputs: Optional[Sequence[VideoInput]] = None):
        super().__init__()
        self._input_url = input_url
        self._source = source
        self._inputs = None if inputs is None else list(inputs)

    def expand(self, pbegin):
        inputs = self._inputs if self._inputs is not None else expand_input(self._input_url, self._source)
        return (
            pbegin
            | "Videos" >> beam.Create(inputs)
            | "SpreadVideos" >> beam.Reshuffle()
        )
