"""Train the Mask R-CNN proposal model on a YouTube-VIS data set.

``train_detector(dataset_url, out_url, cfg)`` reads the ``detector:`` and
``train_detector:`` config sections. A run is reproducible from its seed: the
batch of step ``s`` and its augmentations depend only on ``(seed, s)``
(:func:`tubelets.models.detection_data.batch_indices`), the learning rate is a
function of ``s``, and the model's own sampling (RPN/RoI) is reseeded every
step, so a run resumed from a checkpoint continues as the uninterrupted run
would. Checkpoints go to ``out_url`` (any fsspec URL) every
``checkpoint_every`` steps and at the end, atomically.

Command line: ``tubelets train detector DATASET OUT.pt`` (or
``python -m tubelets.models.train_detector DATASET OUT.pt``), see
:func:`add_train_detector_arguments`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from typing import Any, Mapping

import fsspec
import torch
from tqdm.auto import tqdm

from tubelets.errors import CheckpointError, ConfigError
from tubelets.models.augment import augment_sample
from tubelets.models.checkpoints import FORMAT, make_checkpoint, read_checkpoint, strip_for_release, write_checkpoint
from tubelets.models.detection_data import (
    AUGMENT_STREAM,
    INIT_STREAM,
    MODEL_STREAM,
    FrameDetectionDataset,
    batch_indices,
    sample_seed,
)
from tubelets.models.detector import build_detector
from tubelets.models.loading import apply_checkpoint, resolve_device
from tubelets.models.training_cli import add_training_arguments, training_config


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

    def __init__(self, frames: FrameDetectionDataset, batch_size: int, seed: int, aug_cfg: Mapping):
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


def learning_rate(step: int, train_cfg: Mapping) -> float:
    """The learning rate of step ``step``: linear warm-up from 1%, then cosine or step decay."""
    base, total, warmup = float(train_cfg["lr"]), int(train_cfg["steps"]), int(train_cfg["warmup_steps"])
    if step < warmup:
        return base * (0.01 + 0.99 * step / warmup)
    if train_cfg["schedule"] == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        floor = float(train_cfg["min_lr_ratio"])
        return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
    if train_cfg["schedule"] == "step":
        return base * 0.1 ** sum(step >= fraction * total for fraction in train_cfg["milestones"])
    raise ConfigError(f"train_detector.schedule must be 'cosine' or 'step', got {train_cfg['schedule']!r}")


def make_optimizer(model: torch.nn.Module, train_cfg: Mapping) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum) over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    lr, decay = float(train_cfg["lr"]), float(train_cfg["weight_decay"])
    if train_cfg["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    if train_cfg["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(train_cfg["momentum"]), weight_decay=decay)
    raise ConfigError(f"train_detector.optimizer must be 'adamw' or 'sgd', got {train_cfg['optimizer']!r}")


def train_detector(
    dataset_url: str,
    out_url: str,
    cfg: Mapping[str, Any],
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> TrainResult:
    """Train ``cfg["detector"]`` on the data set at ``dataset_url``; checkpoints to ``out_url``."""
    started = time.monotonic()
    detector_cfg, train_cfg = cfg["detector"], cfg["train_detector"]
    frames = FrameDetectionDataset(dataset_url, source=train_cfg["source"], frame_stride=train_cfg["frame_stride"])
    check_categories(frames.categories, detector_cfg, dataset_url)
    torch_device = resolve_device(device)
    torch.manual_seed(sample_seed(int(train_cfg["seed"]), INIT_STREAM))
    model = build_detector(detector_cfg)
    optimizer = make_optimizer(model, train_cfg)
    start_step = restore(model, optimizer, out_url, detector_cfg, train_cfg) if resume else 0
    if start_step == 0 and train_cfg.get("init_from"):
        apply_checkpoint(model, read_checkpoint(train_cfg["init_from"]), train_cfg["init_from"], detector_cfg)
    model.to(torch_device).train()
    _optimizer_to(optimizer, torch_device)
    losses = run_steps(model, optimizer, frames, cfg, out_url, start_step, torch_device, progress)
    final = training_checkpoint(model, optimizer, frames, cfg, int(train_cfg["steps"]))
    if train_cfg["release"]:
        final = strip_for_release(final)
    write_checkpoint(out_url, final)
    recent = losses[-50:]
    return TrainResult(
        checkpoint_url=out_url,
        checkpoint_id=final["checkpoint_id"],
        start_step=start_step,
        steps=int(train_cfg["steps"]),
        loss=sum(recent) / len(recent) if recent else float("nan"),
        wall_seconds=time.monotonic() - started,
        device=str(torch_device),
        frames=len(frames),
    )


def run_steps(model, optimizer, frames, cfg, out_url, start_step, device, progress) -> list[float]:
    """The training loop from ``start_step`` to ``train_detector.steps``; returns the total loss of each step."""
    train_cfg = cfg["train_detector"]
    batches = TrainingBatches(frames, int(train_cfg["batch_size"]), int(train_cfg["seed"]), train_cfg["augment"])
    steps = range(start_step, int(train_cfg["steps"]))
    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, sampler=steps, num_workers=int(train_cfg["workers"]), collate_fn=_as_is
    )
    bar = tqdm(total=steps.stop, initial=start_step, disable=not progress, mininterval=2.0, desc="train")
    losses: list[float] = []
    for step, (images, targets) in zip(steps, loader):
        lr = learning_rate(step, train_cfg)
        losses.append(train_step(model, optimizer, images, targets, lr, step, train_cfg, device))
        bar.update(1)
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}", lr=f"{lr:.2e}", refresh=False)
        done = step + 1
        if done % int(train_cfg["checkpoint_every"]) == 0 and done < steps.stop:
            checkpoint = training_checkpoint(model, optimizer, frames, cfg, done)
            write_checkpoint(out_url, checkpoint)
            bar.write(f"step {done}: checkpoint {checkpoint['checkpoint_id']} -> {out_url}")
    bar.close()
    return losses


def training_checkpoint(model, optimizer, frames: FrameDetectionDataset, cfg: Mapping, step: int) -> dict:
    """The checkpoint of a run at ``step``, with the optimizer state for resuming."""
    preset = cfg["detector"]["preset"]
    return make_checkpoint(
        model, preset=preset, categories=frames.categories, config=cfg, step=step, optimizer=optimizer
    )


def train_step(model, optimizer, images, targets, lr, step, train_cfg, device) -> float:
    """One optimiser step on a batch; returns the total loss. RPN/RoI sampling is seeded by the step."""
    torch.manual_seed(sample_seed(int(train_cfg["seed"]), MODEL_STREAM, step))
    for group in optimizer.param_groups:
        group["lr"] = lr
    images = [image.to(device) for image in images]
    targets = [{key: value.to(device) for key, value in target.items()} for target in targets]
    loss = sum(model(images, targets).values())
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training loss is {loss.item()} at step {step}; lower train_detector.lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if train_cfg.get("clip_grad_norm"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(train_cfg["clip_grad_norm"]))
    optimizer.step()
    return float(loss.item())


def restore(model, optimizer, out_url: str, detector_cfg: Mapping, train_cfg: Mapping) -> int:
    """Load the checkpoint at ``out_url`` to resume; returns its step (0 when there is none yet)."""
    fs, path = fsspec.core.url_to_fs(out_url)
    if not fs.exists(path):
        return 0
    checkpoint = read_checkpoint(out_url)
    if checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"cannot resume from {out_url!r}: not a tubelets training checkpoint")
    apply_checkpoint(model, checkpoint, out_url, detector_cfg)
    if checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    step = int(checkpoint["step"])
    if step > int(train_cfg["steps"]):
        raise ConfigError(f"{out_url!r} is at step {step}, beyond train_detector.steps {train_cfg['steps']}")
    return step


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


def _optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


def add_train_detector_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``tubelets train detector``."""
    return add_training_arguments(parser, "train_detector", "detector.pt")


def run_train_detector(args: argparse.Namespace) -> TrainResult:
    """Run ``tubelets train detector`` from parsed arguments; prints a summary to stderr."""
    cfg = training_config(args, "train_detector")
    result = train_detector(args.dataset, args.out, cfg, args.resume, args.device, progress=not args.no_progress)
    print(
        f"trained {result.steps - result.start_step} steps ({result.start_step}->{result.steps}) on "
        f"{result.frames} frames in {result.wall_seconds:.0f} s on {result.device}; final loss {result.loss:.3f}; "
        f"checkpoint {result.checkpoint_id} -> {result.checkpoint_url}",
        file=sys.stderr,
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = add_train_detector_arguments(argparse.ArgumentParser(prog="python -m tubelets.models.train_detector"))
    run_train_detector(parser.parse_args(argv))


if __name__ == "__main__":
    main()
