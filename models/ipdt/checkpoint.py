"""Tracker checkpoint files: the IPDT heads plus the detector they were trained against.

A ``torch.save``d dict (readable with ``weights_only=True``), written with the
detector's atomic writer (:func:`tubelets.models.checkpoints.write_checkpoint`)::

    format          "tubelets.tracker/1"
    model           state dict of the IPDT heads (float32, or float16 when released)
    model_config    IPDTConfig as a dict
    detector        {"checkpoint_id", "url", "section"}: the frozen detector whose FPN the heads
                    read; "section" is the ``detector:`` config it was loaded with
    config          the full run config that trained it
    step            optimiser steps taken
    optimizer       optimizer.state_dict() for resuming, or None (released checkpoints drop it)
    checkpoint_id   first 16 hex digits of the sha256 of the stored weights

The heads only make sense on the features of the detector they were trained
with, so loading them with another detector is a ``CheckpointError`` naming
both checkpoint ids.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

import torch
from torchvision.models.detection import MaskRCNN

from tubelets.errors import CheckpointError, ConfigError
from tubelets.models.checkpoints import check_same_detector, read_own_checkpoint, stored_state_dict, weights_id
from tubelets.models.ipdt.model import IPDT, IPDTConfig
from tubelets.models.loading import CheckpointInfo, load_detector, load_matching

FORMAT = "tubelets.tracker/1"
REQUIRED = ("model_config", "detector", "step")  # besides the model and its checkpoint_id


@dataclasses.dataclass(frozen=True)
class TrackerCheckpointInfo:
    """What was loaded: the tracker checkpoint and the detector it belongs to."""

    url: str
    checkpoint_id: str
    step: int
    detector_checkpoint_id: str
    detector_url: Optional[str]


def make_tracker_checkpoint(model: IPDT, *, detector: CheckpointInfo, detector_section: Mapping[str, Any],
                            config: Mapping[str, Any], step: int = 0,
                            optimizer: Optional[torch.optim.Optimizer] = None, half: bool = False) -> dict:
    """The checkpoint dict of ``model`` trained on ``detector``'s features (see the module docstring)."""
    state = stored_state_dict(model, half=half)
    return {
        "format": FORMAT,
        "model": state,
        "model_config": model.config.to_dict(),
        "detector": {
            "checkpoint_id": detector.checkpoint_id,
            "url": detector.url,
            "section": dict(detector_section),
        },
        "config": dict(config),
        "step": int(step),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "checkpoint_id": weights_id(state),
    }


def read_tracker_checkpoint(url: str) -> dict:
    """The checkpoint dict at ``url``; ``CheckpointError`` naming the file when missing, corrupt or not ours."""
    return read_own_checkpoint(url, FORMAT, "tracker", REQUIRED)


def model_from_checkpoint(checkpoint: Mapping[str, Any], url: str) -> IPDT:
    """The IPDT heads of a checkpoint dict, float32, in eval mode."""
    try:
        config = IPDTConfig.from_dict(checkpoint["model_config"])
    except (ConfigError, TypeError, ValueError) as error:
        raise CheckpointError(f"tracker checkpoint {url!r} has a bad model_config: {error}") from None
    model = IPDT(config)
    load_matching(model, checkpoint["model"], url)
    return model.eval()


def tracker_info(checkpoint: Mapping[str, Any], url: str) -> TrackerCheckpointInfo:
    detector = checkpoint["detector"]
    return TrackerCheckpointInfo(url, checkpoint["checkpoint_id"], int(checkpoint["step"]),
                                 str(detector["checkpoint_id"]), detector.get("url"))


def check_detector(tracker: TrackerCheckpointInfo, detector: CheckpointInfo) -> None:
    """``CheckpointError`` unless ``detector`` is the one ``tracker`` was trained against."""
    check_same_detector(f"tracker checkpoint {tracker.url!r} ({tracker.checkpoint_id})", "features",
                        (tracker.detector_checkpoint_id, tracker.detector_url), (detector.checkpoint_id, detector.url),
                        "train the tracker against this detector, or use that one")


def load_tracking_models(url: str, detector_checkpoint: Optional[str] = None,
                         device: str = "auto") -> tuple[MaskRCNN, IPDT, TrackerCheckpointInfo]:
    """The frozen detector and the IPDT heads of the tracker checkpoint at ``url``, checked to belong together.

    ``detector_checkpoint`` overrides the detector URL recorded in the tracker
    checkpoint (its other detector settings are kept); it must still hold the
    same weights.
    """
    checkpoint = read_tracker_checkpoint(url)
    info = tracker_info(checkpoint, url)
    section = dict(checkpoint["detector"]["section"])
    if detector_checkpoint:
        section["checkpoint"] = detector_checkpoint
    section["device"] = device
    detector, detector_info = load_detector({"detector": section})
    check_detector(info, detector_info)
    for parameter in detector.parameters():
        parameter.requires_grad_(False)
    model = model_from_checkpoint(checkpoint, url).to(next(detector.parameters()).device)
    return detector, model, info


class UsesTrackingModels:
    """For a dataclass with ``checkpoint``, ``detector_checkpoint`` and ``device`` fields: its models.

    :meth:`load_models` (call it from ``__post_init__``) sets ``detector``,
    ``model`` (the IPDT heads) and ``info`` from the tracker checkpoint, or
    leaves them None when ``checkpoint`` is None; :meth:`with_models` builds
    one on given models instead (tests, benchmarks).
    """

    def load_models(self) -> None:
        self.detector, self.model, self.info = None, None, None
        if self.checkpoint is not None:
            self.detector, self.model, self.info = load_tracking_models(
                self.checkpoint, self.detector_checkpoint, self.device
            )

    @classmethod
    def with_models(cls, detector: torch.nn.Module, model: IPDT, **settings):
        """One on given models, no checkpoint read (``settings`` may hold a ``checkpoint``: it is not read)."""
        made = cls(**{**settings, "checkpoint": None})
        made.detector, made.model = detector.eval(), model.eval()
        return made
