"""Per video: gather the frames' proposals, calibrate classes, track into tubelets."""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from tubelets.config import config_hash
from tubelets.io.frames import VideoFrames
from tubelets.process_cache import process_cached
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


def _models_key(run_id: Optional[str], tracker_cfg: Mapping[str, Any], scoring: Mapping[str, Any]) -> str:
    # The run is part of the key: a worker that outlives a run loads a checkpoint rewritten at the same URL again.
    return config_hash({"run_id": run_id, "tracker": tracker_cfg, "scoring": scoring})


@process_cached(maxsize=2, key=_models_key)
def tracking_models(run_id: Optional[str], tracker_cfg: Mapping[str, Any], scoring: Mapping[str, Any]):
    """``(tracker, scorer or None)`` of the ``tracker:`` and ``scoring:`` sections, built once per process and run.

    Once: Beam's Dask runner sets :class:`TrackVideo` up for every video (:mod:`tubelets.process_cache`), and
    a tracker loads its checkpoint when built. Shared by the process's threads: a tracker keeps every video's
    state inside its ``track`` call (:class:`tubelets.models.trackers.Tracker`; the IPDT trackers make a
    ``Propagator`` and a ``FeatureWindow`` per call) and the models only run inference; the scorer holds weights.
    """
    from tubelets.models.trackers import build_tracker
    from tubelets.models.tubelet_scoring import scorer_from_config

    return build_tracker(tracker_cfg["name"], tracker_cfg), scorer_from_config(scoring)


class TrackVideo(beam.DoFn):
    """``VideoProposals`` -> ``(VideoMeta, [Tubelet])``: calibration, the named tracker, other classes, the score.

    The steps are :func:`tubelets.models.video_tracking.track_video`'s; this DoFn takes the tracker built once
    per worker process (:func:`tracking_models`), hands it the video's frames and counts what comes out.
    """

    def __init__(self, config: Mapping[str, Any]):
        self._run_id = config["run"]["run_id"]
        self._calibration = dict(config["calibration"])
        self._tracker_cfg = dict(config["tracker"])
        self._scoring = dict(config["scoring"])
        self._max_size = config["io"]["max_size"]
        self._torch_threads = config["proposals"]["torch_threads"]

    def setup(self):
        import torch

        # The tracker's convolutions sum in another order with another thread count (measured: other tubelets
        # with 1 and 2 threads); fixing it here, not only where the detector happens to load in the same process,
        # keeps a video's tubelets the same on every worker.
        if self._torch_threads:
            torch.set_num_threads(self._torch_threads)
        self._tracker, self._scorer = tracking_models(self._run_id, self._tracker_cfg, self._scoring)
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
