"""Train the IPDT heads on a YouTube-VIS data set, on the frozen detector's features.

``train_tracker(dataset_url, out_url, cfg)`` reads the ``detector:`` section
(the frozen backbone, loaded with :func:`tubelets.models.loading.load_detector`)
and ``train_tracker:``. As for the detector (and with its helpers: learning
rate schedule, optimiser, seeds, atomic checkpoint writing), a run is a pure
function of its seed: the samples of step ``s`` are drawn from seeds derived
from ``(seed, s, slot)``, so a resumed run continues as the uninterrupted one
would. Checkpoints go to ``out_url`` every ``checkpoint_every`` steps and at
the end, atomically; ``--resume`` continues from there.

The frozen backbone runs once over every frame of the data set
(:class:`~.data.FeatureBank`); each step then takes ``batch_size`` samples
(:mod:`.data`, augmented in feature space) through one batched forward of
the heads.

Command line: ``tubelets train tracker DATASET OUT.pt`` (its arguments are
parsed in :mod:`tubelets.cli_models`, which calls :func:`train_tracker`).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any, Mapping

import numpy as np
import torch

from tubelets.models.detection_data import AUGMENT_STREAM, INIT_STREAM, sample_seed
from tubelets.models.ipdt import geometry, losses
from tubelets.models.ipdt.checkpoint import (
    check_detector,
    make_tracker_checkpoint,
    read_tracker_checkpoint,
    tracker_info,
)
from tubelets.models.ipdt.data import FeatureBank, TrackingSample, TrackingSamples, augment_levels
from tubelets.models.ipdt.model import IPDT, FrameEncoding, IPDTConfig
from tubelets.models.ipdt.pixel import reference_vectors
from tubelets.models.loading import CheckpointInfo, load_detector, load_matching, resolve_device
from tubelets.models import training_loop
from tubelets.models.training_loop import make_optimizer

SECTION = "train_tracker"


@dataclasses.dataclass(frozen=True)
class TrackerTrainResult:
    """What a run did. ``loss`` is the mean total loss of the last ``min(50, steps run)`` steps."""

    checkpoint_url: str
    checkpoint_id: str
    detector_checkpoint_id: str
    start_step: int
    steps: int
    loss: float
    wall_seconds: float
    device: str
    instances: int  # (instance, frame) pairs samples are drawn from


def step_losses(model: IPDT, bank: FeatureBank, batch: list[TrackingSample], frame_size: tuple[int, int],
                device: torch.device) -> dict[str, torch.Tensor]:
    """The four losses of one batch of samples (one batched forward of every head)."""
    reference, previous, current = encode_batch(model, bank, batch, frame_size, device)
    index = torch.arange(len(batch), device=device)

    def stack(name: str) -> torch.Tensor:
        return torch.as_tensor(np.stack([getattr(s, name) for s in batch]), dtype=torch.float32, device=device)

    target_masks = stack("target_mask")
    target_boxes, present = (t.to(device) for t in geometry.mask_boxes(target_masks > 0.5))
    templates = model.templates(reference, stack("reference_box"), index)
    logits, deltas, anchors = model.track_instances(current, index, templates, stack("previous_box"))
    labels = losses.anchor_labels(anchors, target_boxes, present)
    hard = losses.distractor_anchors(anchors, [torch.as_tensor(s.other_boxes) for s in batch], labels)
    coverage = geometry.masks_to_p2(stack("reference_mask"), current.scale, current.p2_size)
    vectors = reference_vectors(reference.embedding, coverage, model.config.reference_pixels)
    previous_masks = geometry.masks_to_p2(stack("previous_mask"), current.scale, current.p2_size)
    mask_logits = model.segment_instances(current, previous, index, vectors, previous_masks)
    bce, soft_iou = losses.mask_loss(geometry.p2_to_frame(mask_logits, current.scale, frame_size), target_masks)
    return {
        "discriminator": losses.discriminator_loss(logits, labels, hard),
        "box": losses.box_loss(deltas, anchors, target_boxes, labels),
        "mask_bce": bce,
        "mask_iou": soft_iou,
    }


def encode_batch(model: IPDT, bank: FeatureBank, batch: list[TrackingSample], frame_size: tuple[int, int],
                 device: torch.device) -> tuple[FrameEncoding, FrameEncoding, FrameEncoding]:
    """``(reference, previous, current)`` encodings of a batch (frame ``n`` of each is sample ``n``'s).

    Reference and previous embeddings are computed without gradient: the
    embedding learns through the target side of every distance, at a third
    of the backward cost. Only the current (target) frames need the
    segmentation head's frame term.
    """
    scale = bank.scale
    ref_p2, ref_p3 = bank.levels([s.reference_key for s in batch], device)
    prev_p2, prev_p3 = bank.levels([s.previous_key for s in batch], device)
    current = model.encode_frames(*augment_levels(bank, batch, frame_size, device), scale, frame_size)
    with torch.no_grad():
        ref_embedding, prev_embedding = model.embedding(torch.cat([ref_p2, prev_p2])).split(len(batch))
    unused = current.frame_terms[:0]
    reference = FrameEncoding(ref_p2, ref_p3, ref_embedding, unused, scale, frame_size)
    previous = FrameEncoding(prev_p2, prev_p3, prev_embedding, unused, scale, frame_size)
    return reference, previous, current


def draw_batch(samples: TrackingSamples, step: int, train_cfg: Mapping) -> list[TrackingSample]:
    """The samples of step ``step``: each from its own seed ``(seed, step, slot)``."""
    seed = int(train_cfg["seed"])
    slots = range(int(train_cfg["batch_size"]))
    return [samples.sample(sample_seed(seed, AUGMENT_STREAM, step, slot)) for slot in slots]


def train_step(model, bank, samples, optimizer, step: int, train_cfg: Mapping, device) -> dict[str, float]:
    """One optimiser step; returns each loss and their weighted ``total``."""
    parts = step_losses(model, bank, draw_batch(samples, step, train_cfg), samples.frame_size, device)
    weights = train_cfg["loss_weights"]
    total = sum(float(weights[name]) * value for name, value in parts.items())
    training_loop.optimizer_step(model, optimizer, total, step, train_cfg, SECTION)
    return {"total": float(total.item()), **{name: float(value.item()) for name, value in parts.items()}}


def train_tracker(dataset_url: str, out_url: str, cfg: Mapping[str, Any], resume: bool = False,
                  device: str = "auto", progress: bool = True) -> TrackerTrainResult:
    """Train the IPDT heads on the data set at ``dataset_url``; checkpoints to ``out_url``."""
    started = time.monotonic()
    train_cfg = cfg[SECTION]
    torch_device = resolve_device(device)
    detector_section = {**cfg["detector"], "device": str(torch_device)}
    detector, detector_info = load_detector({"detector": detector_section})
    detector.requires_grad_(False)
    samples = TrackingSamples(dataset_url, train_cfg["augment"], int(train_cfg["max_gap"]))
    bank = FeatureBank(detector, samples.dataset, progress=progress, source=train_cfg["source"])
    torch.manual_seed(sample_seed(int(train_cfg["seed"]), INIT_STREAM))
    model = IPDT(IPDTConfig.from_dict(train_cfg.get("model") or {}))
    optimizer = make_optimizer(model, train_cfg)
    start_step = 0
    if resume:
        start_step = training_loop.resume(out_url, optimizer, train_cfg, SECTION,
                                          lambda url: load_training_checkpoint(model, url, detector_info))
    model.to(torch_device).train()
    training_loop.optimizer_to(optimizer, torch_device)

    final, history = run_tracker_steps(
        model, optimizer, start_step, lambda step: train_step(model, bank, samples, optimizer, step, train_cfg,
                                                              torch_device),
        out_url, cfg, train_cfg, detector_info, cfg["detector"], progress, "train tracker")
    return TrackerTrainResult(
        checkpoint_url=out_url,
        checkpoint_id=final["checkpoint_id"],
        detector_checkpoint_id=detector_info.checkpoint_id,
        start_step=start_step,
        steps=int(train_cfg["steps"]),
        loss=training_loop.recent_mean(history, "total"),
        wall_seconds=time.monotonic() - started,
        device=str(torch_device),
        instances=len(samples),
    )


def run_tracker_steps(model: IPDT, optimizer, start_step: int, one_step, out_url: str, cfg: Mapping[str, Any],
                      section_cfg: Mapping[str, Any], detector: CheckpointInfo, detector_section: Mapping[str, Any],
                      progress: bool, label: str) -> tuple[dict, list]:
    """Steps ``start_step`` to ``section_cfg["steps"]`` of ``one_step(step)``, the tracker checkpoint (tied to
    ``detector``) written to ``out_url`` as the section says and at the end; ``(final record, loss history)``.

    Shared by the supervised trainer and the self-supervised one (:mod:`tubelets.models.pixel_adaptation`).
    """
    def checkpoint_at(step: int) -> dict:
        return make_tracker_checkpoint(model, detector=detector, detector_section=detector_section, config=cfg,
                                       step=step, optimizer=optimizer)

    steps = range(start_step, int(section_cfg["steps"]))
    history = training_loop.run_steps(steps, itertools.repeat(None), lambda step, _: one_step(step), checkpoint_at,
                                      out_url, section_cfg, progress, label)
    final = training_loop.write_final(out_url, checkpoint_at(int(section_cfg["steps"])), section_cfg)
    return final, history


def load_training_checkpoint(model: IPDT, out_url: str, detector: CheckpointInfo) -> dict:
    """The tracker checkpoint at ``out_url``, checked against ``detector``, its weights loaded into ``model``."""
    checkpoint = read_tracker_checkpoint(out_url)
    check_detector(tracker_info(checkpoint, out_url), detector)
    load_matching(model, checkpoint["model"], out_url)
    return checkpoint
