"""Per video: gather the frames' proposals, calibrate classes, track into tubelets."""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping

import apache_beam as beam
from apache_beam.metrics import Metrics

from tubelets.io.frames import VideoFrames
from tubelets.records import FrameDetections, VideoMeta, VideoProposals
from tubelets.transforms.proposals import detects_frame

LOG = logging.getLogger(__name__)


def assemble_video(joined: tuple[str, Mapping[str, list]], detect_every: int = 1) -> Iterator[VideoProposals]:
    """``(key, {"meta": [VideoMeta], "frames": [FrameDetections...]})`` -> ``VideoProposals``.

    A video without meta failed to decode (its frames are orphans): nothing is
    emitted, its dead letter was written by the decoder. Frames without any
    detection element get an empty one, so ``frames[i].frame == i`` holds;
    it is marked not detected where the detector skipped the frame
    (``proposals.detect_every``).
    """
    _, grouped = joined
    metas = list(grouped["meta"])
    if not metas:
        return
    meta: VideoMeta = metas[0]
    by_frame = {d.frame: d for d in grouped["frames"]}
    frames = [by_frame.get(i) or FrameDetections.empty(i, detected=detects_frame(i, detect_every))
              for i in range(meta.length)]
    yield VideoProposals(meta, frames)


class GroupProposals(beam.PTransform):
    """Join ``(key, VideoMeta)`` and ``(key, FrameDetections)`` into ``VideoProposals``."""

    def __init__(self, detect_every: int):
        super().__init__()
        self._detect_every = detect_every

    def expand(self, inputs):
        metas, detections = inputs
        return (
            {"meta": metas, "frames": detections}
            | "JoinMetaAndFrames" >> beam.CoGroupByKey()
            | "AssembleVideo" >> beam.FlatMap(assemble_video, self._detect_every)
        )


class TrackVideo(beam.DoFn):
    """``VideoProposals`` -> ``(VideoMeta, [Tubelet])``: calibration, the named tracker, other classes, the score.

    The steps are :func:`tubelets.models.video_tracking.track_video`'s; this DoFn builds the tracker once per
    worker, hands it the video's frames and counts what comes out.
    """

    def __init__(self, config: Mapping[str, Any]):
        self._calibration = dict(config["calibration"])
        self._tracker_cfg = dict(config["tracker"])
        self._scoring = dict(config["scoring"])
        self._max_size = config["io"]["max_size"]
        self._torch_threads = config["proposals"]["torch_threads"]

    def setup(self):
        import torch

        from tubelets.models.trackers import build_tracker
        from tubelets.models.tubelet_scoring import scorer_from_config

        # The tracker's convolutions sum in another order with another thread count (measured: other tubelets
        # with 1 and 2 threads); fixing it here, not only where the detector happens to load in the same process,
        # keeps a video's tubelets the same on every worker.
        if self._torch_threads:
            torch.set_num_threads(self._torch_threads)
        self._tracker = build_tracker(self._tracker_cfg["name"], self._tracker_cfg)
        self._scorer = scorer_from_config(self._scoring)
        self._proposals = Metrics.counter("tubelets", "proposals")
        self._tubelets = Metrics.counter("tubelets", "tubelets")

    def process(self, video: VideoProposals) -> Iterator[tuple[VideoMeta, list]]:
        from tubelets.models.video_tracking import track_video

        # Lazy: a tracker that never looks at pixels never decodes a frame.
        frames = VideoFrames(video.meta, max_size=self._max_size)
        tracked = track_video(video, frames, self._tracker, self._calibration, self._scorer)
        self._proposals.inc(tracked.proposals)
        self._tubelets.inc(len(tracked.tubelets))
        LOG.info("video %s: %d frames, %d tubelets", video.meta.key, video.meta.length, len(tracked.tubelets))
        yield video.meta, tracked.tubelets
