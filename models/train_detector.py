"""Train the Mask R-CNN proposal model on a YouTube-VIS data set.

``train_detector(dataset_url, out_url, cfg)`` reads the ``detector:`` and
``train_detector:`` config sections. A run is reproducible from its seed: the
batch of step ``s`` and its augmentations depend only on ``(seed, s)``
(:func:`tubelets.models.detection_data.batch_indices`), the learning rate is a
function of ``s``, and the model's own sampling (RPN/RoI) is reseeded every
step, so a run resumed from a checkpoint continues as the uninterrupted run
would. Checkpoints go to ``out_url`` (any fsspec URL) every
``checkpoint_every`` steps and at the end, atomically.

Two options for a GPU: ``max_seconds`` stops the run at a wall-clock budget
(counted from the call, set-up included) with its final checkpoint, the
learning-rate decay following the spent share of the budget
(:func:`tubelets.models.training_loop.learning_rate`); such a run is not
reproducible step for step and does not resume. ``mixed_precision`` runs the
forward pass under bfloat16 autocast on CUDA (no loss scaler: bfloat16 has
float32's exponent range, so gradients do not underflow); on the CPU it is off
(bfloat16 autocast is slower than float32 on most CPUs). Without them a run is
exactly what it was.

Command line: ``tubelets train detector DATASET OUT.pt`` (its arguments are
parsed in :mod:`tubelets.cli_models`, which calls :func:`train_detector`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from typing import Any, Mapping, Optional, Sequence

import torch

from tubelets.errors import CheckpointError, ConfigError
from tubelets.models.augment import augment_sample
from tubelets.models.checkpoints import FORMAT, make_checkpoint, read_checkpoint
from tubelets.models.detection_data import (
    AUGMENT_STREAM,
    CombinedFrames,
    INIT_STREAM,
    MODEL_STREAM,
    FrameDetectionDataset,
    batch_indices,
    open_frames,
    sample_seed,
)
from tubelets.models.detector import build_detector
from tubelets.models.loading import apply_checkpoint, resolve_device
from tubelets.models import training_loop
from tubelets.models.training_loop import Budget, make_optimizer

SECTION = "train_detector"


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a training run did. ``loss`` is the mean total loss of the last ``min(50, steps run)`` steps.

    ``steps`` is the step the run reached (``train_detector.steps`` unless its budget stopped it first:
    ``stopped_by_budget``); ``history`` holds each step's ``loss`` and ``lr``, from ``start_step`` on.
    """

    checkpoint_url: str
    checkpoint_id: str
    start_step: int
    steps: int
    loss: float
    wall_seconds: float
    device: str
    frames: int
    stopped_by_budget: bool = False
    history: list[training_loop.StepLosses] = dataclasses.field(default_factory=list, repr=False)


class TrainingBatches(torch.utils.data.Dataset):
    """Item ``s`` is the augmented batch of step ``s``: ``(images, targets)`` lists (see augment.py)."""

    def __init__(self, frames: FrameDetectionDataset | CombinedFrames, batch_size: int, seed: int, aug_cfg: Mapping):
        self.frames, self.batch_size, self.seed, self.aug_cfg = frames, batch_size, seed, dict(aug_cfg)

    def __len__(self) -> int:
        return sys.maxsize

    def __getitem__(self, step: int):
        images, targets = [], []
        for slot, index in enumerate(batch_indices(step, self.batch_size, len(self.frames), self.seed)):
            image, masks, labels = self.frames.raw(index)
            seed = sample_seed(self.seed, AUGMENT_STREAM, step, slot)
            image, target = augment_sample(image, masks, labels, self.aug_cfg, seed)
            images.append(image)
            targets.append(target)
        return images, targets


def train_detector(
    dataset_url: str | Sequence[str],
    out_url: str,
    cfg: Mapping[str, Any],
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    max_seconds: Optional[float] = None,
    mixed_precision: bool = False,
    cache_videos: Optional[int] = None,
) -> TrainResult:
    """Train ``cfg["detector"]`` on the data set at ``dataset_url`` (or several, as one); checkpoints to ``out_url``.

    ``max_seconds``: stop at this wall-clock budget, counted from this call
    (None: run all ``train_detector.steps``). ``mixed_precision``: bfloat16
    autocast on CUDA (off on the CPU). ``cache_videos``: videos of decoded
    frames each loading process keeps (None: all; 0: none, JPEG frames are
    read one at a time, for sets too large to keep decoded).
    """
    started = time.monotonic()
    if max_seconds is not None and resume:
        raise ConfigError("a run with a time budget (max_seconds) cannot resume: its schedule follows the time "
                          "spent, which a resumed run does not know; resume without a budget or start afresh")
    budget = Budget(float(max_seconds), started) if max_seconds is not None else None
    detector_cfg, train_cfg = cfg["detector"], cfg[SECTION]
    frames = open_frames(dataset_url, source=train_cfg["source"], frame_stride=train_cfg["frame_stride"],
                         cache_videos=cache_videos)
    check_categories(frames.categories, detector_cfg, dataset_url)
    torch_device = resolve_device(device)
    torch.manual_seed(sample_seed(int(train_cfg["seed"]), INIT_STREAM))
    model = build_detector(detector_cfg)
    optimizer = make_optimizer(model, train_cfg)
    start_step = 0
    if resume:
        start_step = training_loop.resume(out_url, optimizer, train_cfg, SECTION,
                                          lambda url: load_training_checkpoint(model, url, detector_cfg))
    if start_step == 0 and train_cfg.get("init_from"):
        apply_checkpoint(model, read_checkpoint(train_cfg["init_from"]), train_cfg["init_from"], detector_cfg)
    model.to(torch_device).train()
    training_loop.optimizer_to(optimizer, torch_device)
    autocast = mixed_precision and torch_device.type == "cuda"
    history = run_steps(model, optimizer, frames, cfg, out_url, start_step, torch_device, progress, budget, autocast)
    reached = start_step + len(history)
    return finish_training(out_url, training_checkpoint(model, optimizer, frames, cfg, reached), train_cfg,
                           start_step, history, started, torch_device, len(frames),
                           stopped_by_budget=reached < int(train_cfg["steps"]))


def finish_training(out_url: str, checkpoint: dict, section_cfg: Mapping, start_step: int,
                    history: list[training_loop.StepLosses], started: float, device: torch.device, frames: int,
                    stopped_by_budget: bool = False) -> TrainResult:
    """Write a detector training run's last ``checkpoint`` (as ``section_cfg`` says) and say what the run did.

    Shared by :func:`train_detector` and the DANN trainer (:mod:`tubelets.models.domain_adaptation`).
    """
    final = training_loop.write_final(out_url, checkpoint, section_cfg)
    return TrainResult(
        checkpoint_url=out_url,
        checkpoint_id=final["checkpoint_id"],
        start_step=start_step,
        steps=start_step + len(history),
        loss=training_loop.recent_mean(history, "loss"),
        wall_seconds=time.monotonic() - started,
        device=str(device),
        frames=frames,
        stopped_by_budget=stopped_by_budget,
        history=history,
    )


def run_steps(model, optimizer, frames, cfg, out_url, start_step, device, progress, budget: Optional[Budget],
              autocast: bool) -> list[training_loop.StepLosses]:
    """The training loop from ``start_step`` to ``train_detector.steps``; returns each step's ``loss`` and ``lr``.

    It stops earlier when the ``budget`` (None: none) is spent. ``autocast``: the forward passes under bfloat16
    autocast (CUDA).
    """
    train_cfg = cfg[SECTION]
    batches = TrainingBatches(frames, int(train_cfg["batch_size"]), int(train_cfg["seed"]), train_cfg["augment"])
    steps = range(start_step, int(train_cfg["steps"]))
    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, sampler=steps, num_workers=int(train_cfg["workers"]), collate_fn=training_loop.as_is
    )

    def one_step(step: int, batch) -> training_loop.StepLosses:
        images, targets = batch
        lr = training_loop.learning_rate(step, train_cfg, budget.spent_share() if budget else None)
        loss = train_step(model, optimizer, images, targets, step, train_cfg, device, lr, autocast)
        return {"loss": loss, "lr": lr}

    def checkpoint_at(step: int) -> dict:
        return training_checkpoint(model, optimizer, frames, cfg, step)

    return training_loop.run_steps(steps, loader, one_step, checkpoint_at, out_url, train_cfg, progress, "train",
                                   budget)


def training_checkpoint(
    model, optimizer, frames: FrameDetectionDataset | CombinedFrames, cfg: Mapping, step: int
) -> dict:
    """The checkpoint of a run at ``step``, with the optimizer state for resuming."""
    preset = cfg["detector"]["preset"]
    return make_checkpoint(
        model, preset=preset, categories=frames.categories, config=cfg, step=step, optimizer=optimizer
    )


def train_step(model, optimizer, images, targets, step, train_cfg, device, lr: float, autocast: bool) -> float:
    """One optimiser step on a batch at ``lr``; returns the total loss.

    ``autocast``: the forward pass under bfloat16 autocast (CUDA); the backward
    pass runs outside it, as torch advises.
    """
    loss = detection_loss(model, images, targets, step, train_cfg, device, autocast)
    training_loop.optimizer_step(model, optimizer, loss, step, train_cfg, SECTION, lr)
    return float(loss.item())


def detection_loss(model, images, targets, step, train_cfg, device, autocast: bool = False) -> torch.Tensor:
    """The summed Mask R-CNN training losses of a batch, RPN/RoI sampling seeded by ``(train_cfg["seed"], step)``."""
    torch.manual_seed(sample_seed(int(train_cfg["seed"]), MODEL_STREAM, step))
    images = [image.to(device) for image in images]
    targets = [{key: value.to(device) for key, value in target.items()} for target in targets]
    with torch.autocast(device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
        return sum(model(images, targets).values())


def load_training_checkpoint(model, out_url: str, detector_cfg: Mapping) -> dict:
    """The training checkpoint at ``out_url``, its weights loaded into ``model`` (for resuming)."""
    checkpoint = read_checkpoint(out_url)
    if checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"cannot resume from {out_url!r}: not a tubelets training checkpoint")
    apply_checkpoint(model, checkpoint, out_url, detector_cfg)
    return checkpoint


def check_categories(categories: list[dict], detector_cfg: Mapping, dataset_url: str) -> None:
    """Every data set category id must be a model label (``1 .. num_classes - 1``)."""
    num_classes = int(detector_cfg["num_classes"])
    too_big = [c["id"] for c in categories if not 1 <= int(c["id"]) < num_classes]
    if too_big:
        raise ConfigError(
            f"data set {dataset_url!r} has category ids {too_big} outside 1..{num_classes - 1}: "
            f"set detector.num_classes to at least {max(int(c['id']) for c in categories) + 1}"
        )

