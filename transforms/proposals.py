"""Mask R-CNN proposals through Beam's ``RunInference``, keyed by ``(video key, frame)``.

The model handler loads the detector once per worker process (or once per
machine, shared across processes, on GPU workers), batches frames with Beam's
``BatchElements``, runs each frame of a batch through the detector on its own
(so that its detections never depend on its batch-mates) and returns each
frame's detections above the score threshold with masks already run-length
encoded, so what travels between stages is small. ``detector.precision`` runs
the backbone under autocast (bfloat16 on a GPU by default).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import apache_beam as beam
import numpy as np
import torch
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from tubelets import masks
from tubelets.models.inference import detect_each
from tubelets.models.loading import load_detector, resolve_device
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
    """The loaded detector as one call, frames in and ``FrameDetections`` out: the model RunInference holds.

    On a GPU machine RunInference keeps one model for all the SDK processes, in a process of its own, and each
    process reaches it through a proxy that pickles every call's arguments and result. So the whole forward pass
    is this one method on plain data (frames, detections): a proxy cannot hand out the module, its parameters'
    generator or tensors on the device.
    """

    def __init__(self, model: torch.nn.Module, precision: str, score_threshold: float):
        self.model, self._precision, self._score_threshold = model, precision, score_threshold

    def detect(self, frames: Sequence[np.ndarray]) -> list[FrameDetections]:
        # A forward pass a frame: Beam batches frames of any videos (keys) together, and a video's tubelets must
        # not depend on which others ran with it (see detect_each). The batch still saves Beam's per-call overhead.
        with torch.inference_mode():
            outputs = detect_each(self.model, frames, self._precision)
        return [to_detections(output, self._score_threshold) for output in outputs]


class DetectorModelHandler(ModelHandler[np.ndarray, FrameDetections, FrameDetector]):
    """``RGB uint8 [H, W, 3]`` frames -> ``FrameDetections``, with a Mask R-CNN from a checkpoint."""

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
        model, _ = load_detector({"detector": {**self._detector_cfg, "device": self._device}})
        return FrameDetector(model, self._precision, self._score_threshold)

    def run_inference(
        self, batch: Sequence[np.ndarray], model: FrameDetector, inference_args: Optional[dict] = None
    ) -> Iterable[FrameDetections]:
        return model.detect(list(batch))

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(frame.nbytes for frame in batch)

    def get_metrics_namespace(self) -> str:
        return "tubelets.proposals"


def detects_frame(frame: int, detect_every: int) -> bool:
    """Whether the detector runs on decoded frame ``frame`` (``proposals.detect_every``: the first, then every n-th)."""
    return frame % detect_every == 0


def _frame_detections(keyed) -> tuple[str, FrameDetections]:
    (video_key, frame), detections = keyed
    detections.frame = frame
    return video_key, detections


def _detected(keyed_frame, detect_every: int) -> bool:
    (_, frame), _ = keyed_frame
    return detects_frame(frame, detect_every)


class ProposeInstances(beam.PTransform):
    """``((video key, frame), frame)`` -> ``(video key, FrameDetections)`` for every ``detect_every``-th frame."""

    def __init__(self, handler: DetectorModelHandler, detect_every: int):
        super().__init__()
        self._handler = handler
        self._detect_every = detect_every

    def expand(self, frames):
        if self._detect_every > 1:
            frames = frames | "EveryNthFrame" >> beam.Filter(_detected, self._detect_every)
        return (
            frames
            | "RunInference" >> RunInference(KeyedModelHandler(self._handler))
            | "ByVideo" >> beam.Map(_frame_detections)
        )
