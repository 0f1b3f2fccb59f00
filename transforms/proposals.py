"""Mask R-CNN proposals through Beam's ``RunInference``, keyed by ``(video key, frame)``.

The decoder hands the detector each video's frames in chunks
(:func:`detection_chunks`): the frames it runs on (``proposals.detect_every``),
``proposals.frames_per_forward`` consecutive ones a chunk. The model handler
loads the detector once per worker process (or once per machine, shared
across processes, on GPU workers), batches chunks with Beam's
``BatchElements``, runs each chunk of a batch through the detector in a
forward pass of its own (so that a frame's detections depend on its chunk of
its own video, never on the batch-mates Beam gives it) and returns each
frame's detections above the score threshold with masks already run-length
encoded, so what travels between stages is small. ``detector.precision`` runs
the backbone under autocast (bfloat16 on a GPU by default).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import apache_beam as beam
import numpy as np
import torch
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from tubelets import masks
from tubelets.models.inference import detect_with_features, frames_to_tensors, model_device
from tubelets.models.loading import CheckpointInfo, load_detector, resolve_device
from tubelets.records import FrameDetections

MASK_THRESHOLD = 0.5


def to_detections(output: Mapping[str, torch.Tensor], score_threshold: float) -> FrameDetections:
    """One torchvision detection output as ``FrameDetections`` (``frame`` set later from the key)."""
    keep = output["scores"] >= score_threshold
    binary = (output["masks"][keep, 0] > MASK_THRESHOLD).to("cpu", torch.uint8).numpy()
    return FrameDetections(
        frame=-1,
        boxes=output["boxes"][keep].to("cpu", torch.float32).numpy(),
        scores=output["scores"][keep].to("cpu", torch.float32).numpy(),
        labels=output["labels"][keep].to("cpu", torch.int64).numpy(),
        masks=[masks.encode(m) for m in binary],
    )


class FrameDetector:
    """The loaded detector as one call, chunks of frames in and ``FrameDetections`` out: the model RunInference
    holds.

    On a GPU machine RunInference keeps one model for all the SDK processes, in a process of its own, and each
    process reaches it through a proxy that pickles every call's arguments and result. So the whole forward pass
    is this one method on plain data (frames, detections): a proxy cannot hand out the module, its parameters'
    generator or tensors on the device.
    """

    def __init__(self, model: torch.nn.Module, precision: str, score_threshold: float,
                 info: CheckpointInfo | None = None):
        self.model, self._precision, self._score_threshold = model, precision, score_threshold
        self.info = info  # the checkpoint the model came from (load_detector's)

    def detect(self, chunks: Sequence[np.ndarray]) -> list[list[FrameDetections]]:
        """Each ``uint8 [n, H, W, 3]`` chunk's frames' detections, a forward pass a chunk.

        A pass a chunk, not one for Beam's whole batch: Beam batches chunks of any videos (keys) together, and a
        video's tubelets must not depend on which others ran with it (see ``inference.detect_each``). The batch
        still saves Beam's per-call overhead.
        """
        device = model_device(self.model)
        found = []
        with torch.inference_mode():
            for chunk in chunks:
                outputs, _, _ = detect_with_features(self.model, frames_to_tensors(chunk, device), self._precision)
                found.append([to_detections(output, self._score_threshold) for output in outputs])
        return found


class DetectorModelHandler(ModelHandler[np.ndarray, list, FrameDetector]):
    """Chunks of ``RGB uint8 [n, H, W, 3]`` frames -> their frames' ``FrameDetections``, with a Mask R-CNN from a
    checkpoint."""

    def __init__(
        self,
        detector_cfg: Mapping[str, Any],
        *,
        device: str,
        precision: str,
        batch_size: int,
        torch_threads: Optional[int] = None,
    ):
        # A fixed batch size: BatchElements' adaptive sizing starts at one frame and
        # grows slowly, which on a CPU-bound detector only adds per-call overhead.
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self._detector_cfg = dict(detector_cfg)
        self._device = device
        self._precision = precision  # detector.precision: autocast on a GPU (inference.autocast_dtype)
        self._torch_threads = torch_threads
        self._score_threshold = float(detector_cfg.get("score_threshold") or 0.0)

    def share_model_across_processes(self) -> bool:
        """One model per GPU machine, shared by its SDK processes (Beam's ``large_model``); one per process on the
        CPU. Asked on the worker, where the model loads: the machine that builds the graph (a Dataflow launcher)
        may have no GPU when the workers do."""
        return resolve_device(self._device).type == "cuda"

    def load_model(self) -> FrameDetector:
        if self._torch_threads:
            torch.set_num_threads(self._torch_threads)
        model, info = load_detector({"detector": {**self._detector_cfg, "device": self._device}})
        return FrameDetector(model, self._precision, self._score_threshold, info)

    def run_inference(
        self, batch: Sequence[np.ndarray], model: FrameDetector, inference_args: Optional[dict] = None
    ) -> Iterable[list[FrameDetections]]:
        return model.detect(list(batch))

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(chunk.nbytes for chunk in batch)

    def get_metrics_namespace(self) -> str:
        return "tubelets.proposals"


def detects_frame(frame: int, detect_every: int) -> bool:
    """Whether the detector runs on decoded frame ``frame`` (``proposals.detect_every``: the first, then every n-th)."""
    return frame % detect_every == 0


def detection_chunks(frames: Iterable[np.ndarray], detect_every: int,
                     frames_per_forward: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first frame, uint8 [n, H, W, 3])``: the decoded ``frames`` the detector runs on (:func:`detects_frame`),
    ``frames_per_forward`` consecutive ones a chunk (the last may hold fewer).

    Streaming: a chunk goes out once it is full, so a video is never held whole. Its frames are ``first``,
    ``first + detect_every``, ... A video's chunks depend on the video and the two settings alone.
    """
    chunk: list[np.ndarray] = []
    first = 0
    for position, frame in enumerate(frames):
        if not detects_frame(position, detect_every):
            continue
        if not chunk:
            first = position
        chunk.append(frame)
        if len(chunk) == frames_per_forward:
            yield first, _stacked(chunk)
            chunk = []
    if chunk:
        yield first, _stacked(chunk)


def video_detections(detector: FrameDetector, frames: Iterable[np.ndarray], detect_every: int,
                     frames_per_forward: int) -> list[FrameDetections]:
    """One video's proposals as the pipeline makes them, in this process: the detector's chunks of its decoded
    ``frames``, each frame's ``FrameDetections`` numbered (for benchmarks' bare loops and oracles)."""
    found = []
    for first, chunk in detection_chunks(frames, detect_every, frames_per_forward):
        (chunk_detections,) = detector.detect([chunk])
        found += _numbered(chunk_detections, first, detect_every)
    return found


def _stacked(frames: list[np.ndarray]) -> np.ndarray:
    return frames[0][None] if len(frames) == 1 else np.stack(frames)  # one frame: a view, no copy


def _numbered(chunk_detections: list[FrameDetections], first: int, detect_every: int) -> list[FrameDetections]:
    """A chunk's detections with their frames set: ``first``, ``first + detect_every``, ..."""
    for offset, detections in enumerate(chunk_detections):
        detections.frame = first + offset * detect_every
    return chunk_detections


def _frame_detections(keyed, detect_every: int) -> Iterator[tuple[str, FrameDetections]]:
    (video_key, first), chunk_detections = keyed
    for detections in _numbered(chunk_detections, first, detect_every):
        yield video_key, detections


class ProposeInstances(beam.PTransform):
    """``((video key, first frame), chunk)`` of :func:`detection_chunks` -> ``(video key, FrameDetections)`` of
    each of the chunk's frames."""

    def __init__(self, handler: DetectorModelHandler, detect_every: int):
        super().__init__()
        self._handler = handler
        self._detect_every = detect_every

    def expand(self, chunks):
        return (
            chunks
            | "RunInference" >> RunInference(KeyedModelHandler(self._handler))
            | "ByVideo" >> beam.FlatMap(_frame_detections, self._detect_every)
        )
