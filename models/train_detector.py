"""Train the Mask R-CNN proposal model on a YouTube-VIS data set.

``train_detector(dataset_url, out_url, cfg)`` reads the ``detector:`` and
``train_detector:`` config sections. A run is reproducible from its seed: the
batch of step ``s`` and its augmentations depend only on ``(seed, s)``
(:func:`tubelets.models.detection_data.batch_indices`), the learning rate is a
function of ``s``, and the model's own sampling (RPN/RoI) is reseeded every
step, so a run resumed from a checkpoint continues as the uninterrupted run
would. Checkpoints go to ``out_url`` (any fsspec URL) every
``checkpoint_every`` steps and at the end, atomically.

Command line: ``tubelets train detector DATASET OUT.pt`` (its arguments are
parsed in :mod:`tubelets.cli_models`, which calls :func:`train_detector`).
"""

from __future__ import annotations

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
from tubelets.models.training_loop import make_optimizer

SECTION = "train_detector"


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a training run did. ``loss`` is the mean total loss of the last ``min(50, steps run)`` steps."""

    checkpoint_url: str
    checkpoint_id: str
    start_step: int
    steps: int
    loss: float
    wall_seconds: float
    device: str
    frames: int


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
    threads: Optional[int] = None,
) -> TrainResult:
    """Train ``cfg["detector"]`` on the data set at ``dataset_url`` (or several, as one); checkpoints to ``out_url``.

    ``threads``: torch's CPU threads for this process (None: torch's choice).
    """
    started = time.monotonic()
    if threads:
        torch.set_num_threads(threads)
    detector_cfg, train_cfg = cfg["detector"], cfg[SECTION]
    frames = open_frames(dataset_url, source=train_cfg["source"], frame_stride=train_cfg["frame_stride"])
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
    history = run_steps(model, optimizer, frames, cfg, out_url, start_step, torch_device, progress)
    final = training_loop.write_final(
        out_url, training_checkpoint(model, optimizer, frames, cfg, int(train_cfg["steps"])), train_cfg
    )
    return TrainResult(
        checkpoint_url=out_url,
        checkpoint_id=final["checkpoint_id"],
        start_step=start_step,
        steps=int(train_cfg["steps"]),
        loss=training_loop.recent_mean(history, "loss"),
        wall_seconds=time.monotonic() - started,
        device=str(torch_device),
        frames=len(frames),
    )


def run_steps(model, optimizer, frames, cfg, out_url, start_step, device, progress) -> list[training_loop.StepLosses]:
    """The training loop from ``start_step`` to ``train_detector.steps``; returns each step's ``loss`` and ``lr``."""
    train_cfg = cfg[SECTION]
    batches = TrainingBatches(frames, int(train_cfg["batch_size"]), int(train_cfg["seed"]), train_cfg["augment"])
    steps = range(start_step, int(train_cfg["steps"]))
    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, sampler=steps, num_workers=int(train_cfg["workers"]), collate_fn=_as_is
    )

    def one_step(step: int, batch) -> training_loop.StepLosses:
        images, targets = batch
        loss = train_step(model, optimizer, images, targets, step, train_cfg, device)
        return {"loss": loss, "lr": training_loop.learning_rate(step, train_cfg)}

    def checkpoint_at(step: int) -> dict:
        return training_checkpoint(model, optimizer, frames, cfg, step)

    return training_loop.run_steps(steps, loader, one_step, checkpoint_at, out_url, train_cfg, progress, "train")


def training_checkpoint(
    model, optimizer, frames: FrameDetectionDataset | CombinedFrames, cfg: Mapping, step: int
) -> dict:
    """The checkpoint of a run at ``step``, with the optimizer state for resuming."""
    preset = cfg["detector"]["preset"]
    return make_checkpoint(
        model, preset=preset, categories=frames.categories, config=cfg, step=step, optimizer=optimizer
    )


def train_step(model, optimizer, images, targets, step, train_cfg, device) -> float:
    """One optimiser step on a batch; returns the total loss. RPN/RoI sampling is seeded by the step."""
    torch.manual_seed(sample_seed(int(train_cfg["seed"]), MODEL_STREAM, step))
    images = [image.to(device) for image in images]
    targets = [{key: value.to(device) for key, value in target.items()} for target in targets]
    loss = sum(model(images, targets).values())
    training_loop.optimizer_step(model, optimizer, loss, step, train_cfg, SECTION)
    return float(loss.item())


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


def _as_is(batch):
    return batch
