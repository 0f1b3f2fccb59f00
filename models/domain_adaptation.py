"""Domain-adversarial adaptation (DANN) of the detector to unlabelled videos from another domain.

``adapt_detector(source, target, out, cfg)`` fine-tunes a trained detector
(``adapt_detector.init_from``, the shipped ``builtin:detector-small`` by default)
on two streams at once:

* labelled frames of the ``source`` YouTube-VIS data sets, with the usual Mask
  R-CNN losses (the batches, augmentations and seeded RPN/RoI sampling of
  :mod:`tubelets.models.train_detector`);
* unlabelled frames of the ``target`` videos (a glob or folder on any fsspec URL,
  decoded by :func:`tubelets.io.video.read_frames`), which only go through the
  backbone.

A small convolutional *domain discriminator* reads the FPN levels of both
(``feature_levels``) and predicts, at every position, whether the features come
from a source frame (0) or a target frame (1). Between the features and the
discriminator sits a *gradient-reversal layer* (Ganin & Lempitsky, "Unsupervised
Domain Adaptation by Backpropagation", 2015): the identity going forward, the
gradient times ``-lambda`` going back. One optimiser step over all weights
then trains the discriminator to tell the domains apart and the backbone to
make them indistinguishable, while the detection losses keep the features
useful. ``lambda`` ramps from 0 to ``grl_max`` with the paper's schedule
``2 / (1 + exp(-grl_gamma p)) - 1`` (``p`` the share of steps done), so the
discriminator's first, noisy gradients do not disturb the trained detector.
As in "Domain Adaptive Faster R-CNN" (Chen et al., 2018) the discriminator
is per position (a patch classifier), one network shared by the levels,
whose channels the FPN makes equal.

The result is an ordinary detector checkpoint (the discriminator's weights ride
along under ``discriminator`` for resuming and are ignored by every reader), so it
drops in as ``detector.checkpoint``. A run is a function of its seed: step
``s``'s source and target batches and their augmentations come from ``(seed, s)``,
so ``--resume`` continues as the uninterrupted run would.

Command line: ``tubelets adapt detector SOURCE... OUT.pt --target GLOB`` (:mod:`tubelets.cli_adapt`).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from tubelets.errors import ConfigError, DatasetError
from tubelets.io.dataset import list_videos
from tubelets.io.video import read_frames
from tubelets.models import training_loop
from tubelets.models.augment import augment_sample
from tubelets.models.checkpoints import read_checkpoint
from tubelets.models.detection_data import (
    INIT_STREAM,
    TARGET_AUGMENT_STREAM,
    TARGET_ORDER_STREAM,
    batch_indices,
    open_frames,
    sample_seed,
)
from tubelets.models.detector import build_detector
from tubelets.models.inference import fpn_levels
from tubelets.models.loading import apply_checkpoint, resolve_device
from tubelets.models.train_detector import (
    TrainingBatches,
    TrainResult,
    check_categories,
    detection_loss,
    finish_training,
    load_training_checkpoint,
    training_checkpoint,
)
from tubelets.models.training_loop import make_optimizer

SECTION = "adapt_detector"
SOURCE_LABEL, TARGET_LABEL = 0.0, 1.0


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-coefficient``."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.neg() * ctx.coefficient, None  # no gradient for the coefficient


def reverse_gradient(features: torch.Tensor, coefficient: float) -> torch.Tensor:
    """``features`` unchanged, with their gradient reversed and scaled by ``coefficient`` on the way back."""
    return GradientReversal.apply(features, coefficient)


def grl_coefficient(step: int, adapt_cfg: Mapping) -> float:
    """DANN's schedule: ``grl_max * (2 / (1 + exp(-grl_gamma * p)) - 1)``, ``p = step / steps`` (0 at the start)."""
    progress = min(1.0, step / max(1, int(adapt_cfg["steps"])))
    return float(adapt_cfg["grl_max"]) * (2.0 / (1.0 + math.exp(-float(adapt_cfg["grl_gamma"]) * progress)) - 1.0)


class DomainDiscriminator(nn.Module):
    """Per-position domain logits of a feature map: ``[B, C, H, W] -> [B, 1, H, W]`` (> 0: target).

    Two 3x3 convolutions (a 5x5 receptive field on the level) and a 1x1 one; one
    network for every FPN level, whose channels are all the FPN's width.
    """

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def domain_loss(discriminator: nn.Module, source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                levels: Sequence[str], coefficient: float) -> tuple[torch.Tensor, float]:
    """The discriminator's binary cross-entropy over ``levels`` of both domains' features, through the GRL.

    Returns the loss (each level and domain weighs alike, so a batch's share does not depend on its
    size) and the discriminator's accuracy over all positions, for the progress bar.
    """
    losses, correct, seen = [], 0.0, 0
    for level in levels:
        for features, label in ((source[level], SOURCE_LABEL), (target[level], TARGET_LABEL)):
            logits = discriminator(reverse_gradient(features, coefficient))
            losses.append(F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label)))
            correct += float(((logits > 0).float() == label).sum())
            seen += logits.numel()
    return torch.stack(losses).mean(), correct / max(1, seen)


@contextlib.contextmanager
def captured_output(module: nn.Module) -> Iterator[list]:
    """A list that receives ``module``'s outputs while the context is open (a forward hook)."""
    outputs: list = []
    handle = module.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()


class TargetFrames:
    """The unlabelled frames of the videos ``glob_or_folder`` matches: every ``frame_stride``-th, decoded once.

    ``frames_per_video`` keeps at most that many of a video's (evenly spread; None: all). ``max_size`` caps
    the longer side as ``io.max_size`` does. Frames are ``uint8 [H, W, 3]`` RGB.
    """

    def __init__(self, glob_or_folder: str, frame_stride: int, frames_per_video: int | None, max_size: int | None,
                 progress: bool = False):
        urls = list_videos(glob_or_folder)
        if not urls:
            raise DatasetError(f"no videos match the target {glob_or_folder!r}")
        self.urls = urls
        self.frames: list[np.ndarray] = []
        for url in tqdm(urls, desc="decode target", disable=not progress, file=sys.stderr):
            frames = read_frames(url, stride=frame_stride, max_size=max_size).frames
            if frames_per_video is not None and len(frames) > frames_per_video:
                frames = frames[np.linspace(0, len(frames) - 1, frames_per_video).round().astype(int)]
            self.frames.extend(frames)
        if not self.frames:
            raise DatasetError(f"the target videos {glob_or_folder!r} hold no frames")

    def __len__(self) -> int:
        return len(self.frames)


class AdaptationBatches(torch.utils.data.Dataset):
    """Item ``s``: step ``s``'s labelled source batch ``(images, targets)`` and its unlabelled target images.

    Target frames get the source's augmentations (flip, scale, colour), from their own random streams.
    """

    def __init__(self, source: TrainingBatches, target: TargetFrames, batch_size: int, seed: int, aug_cfg: Mapping):
        self.source, self.target, self.batch_size, self.seed, self.aug_cfg = source, target, batch_size, seed, aug_cfg

    def __len__(self) -> int:
        return sys.maxsize

    def __getitem__(self, step: int):
        order_seed = sample_seed(self.seed, TARGET_ORDER_STREAM)
        images = []
        for slot, index in enumerate(batch_indices(step, self.batch_size, len(self.target), order_seed)):
            frame = torch.from_numpy(np.ascontiguousarray(self.target.frames[index])).permute(2, 0, 1).contiguous()
            height, width = frame.shape[-2:]
            no_masks, no_labels = torch.zeros((0, height, width), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
            seed = sample_seed(self.seed, TARGET_AUGMENT_STREAM, step, slot)
            images.append(augment_sample(frame, no_masks, no_labels, self.aug_cfg, seed)[0])
        return self.source[step], images


def adapt_detector(
    source: str | Sequence[str],
    target: str,
    out_url: str,
    cfg: Mapping[str, Any],
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> TrainResult:
    """Adapt ``adapt_detector.init_from`` to the ``target`` videos (DANN); checkpoints to ``out_url``.

    ``source``: the labelled YouTube-VIS data set folder(s); ``target``: a glob or folder of unlabelled
    videos (any fsspec URL). Returns what ``train_detector`` returns; its ``history`` also holds each step's
    ``detection`` and ``domain`` losses, the discriminator's ``domain_accuracy`` and the GRL ``lambda``.
    """
    started = time.monotonic()
    detector_cfg, adapt_cfg = cfg["detector"], cfg[SECTION]
    levels = [str(level) for level in adapt_cfg["feature_levels"]]
    frames = open_frames(source, source=adapt_cfg["source"], frame_stride=adapt_cfg["frame_stride"])
    check_categories(frames.categories, detector_cfg, source)
    target_frames = TargetFrames(target, int(adapt_cfg["target_frame_stride"]), adapt_cfg["target_frames_per_video"],
                                 cfg["io"].get("max_size"), progress)
    torch_device = resolve_device(device)
    torch.manual_seed(sample_seed(int(adapt_cfg["seed"]), INIT_STREAM))
    model = build_detector(detector_cfg)
    with torch.no_grad():  # the level names, from a tiny pass (a preset's FPN may have other levels)
        known = set(model.backbone(torch.zeros(1, 3, 64, 64)))
    if not levels or set(levels) - known:
        raise ConfigError(f"{SECTION}.feature_levels {levels} must name FPN levels of the detector: {sorted(known)}")
    discriminator = DomainDiscriminator(model.backbone.out_channels, int(adapt_cfg["discriminator_width"]))
    trainable = nn.ModuleDict({"detector": model, "discriminator": discriminator})
    optimizer = make_optimizer(trainable, adapt_cfg)
    start_step = 0
    if resume:
        start_step = training_loop.resume(out_url, optimizer, adapt_cfg, SECTION,
                                          lambda url: _load_adaptation_checkpoint(model, discriminator, url, cfg))
    if start_step == 0:
        apply_checkpoint(model, read_checkpoint(adapt_cfg["init_from"]), adapt_cfg["init_from"], detector_cfg)
    trainable.to(torch_device).train()
    training_loop.optimizer_to(optimizer, torch_device)

    batches = AdaptationBatches(
        TrainingBatches(frames, int(adapt_cfg["batch_size"]), int(adapt_cfg["seed"]), adapt_cfg["augment"]),
        target_frames, int(adapt_cfg["target_batch_size"]), int(adapt_cfg["seed"]), adapt_cfg["augment"],
    )
    steps = range(start_step, int(adapt_cfg["steps"]))
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=steps,
                                         num_workers=int(adapt_cfg["workers"]), collate_fn=training_loop.as_is)

    def one_step(step: int, batch) -> training_loop.StepLosses:
        (images, targets), target_images = batch
        lr = training_loop.learning_rate(step, adapt_cfg)
        coefficient = grl_coefficient(step, adapt_cfg)
        with captured_output(model.backbone) as source_features:
            detection = detection_loss(model, images, targets, step, adapt_cfg, torch_device)
        target_features, _ = fpn_levels(model, [image.to(torch_device) for image in target_images])
        domain, accuracy = domain_loss(discriminator, source_features[0], target_features, levels, coefficient)
        loss = detection + float(adapt_cfg["domain_weight"]) * domain
        training_loop.optimizer_step(trainable, optimizer, loss, step, adapt_cfg, SECTION, lr)
        return {"loss": float(loss.item()), "detection": float(detection.item()), "domain": float(domain.item()),
                "domain_accuracy": accuracy, "lambda": coefficient, "lr": lr}

    def checkpoint_at(step: int) -> dict:
        return _adaptation_checkpoint(model, discriminator, optimizer, frames, cfg, step)

    history = training_loop.run_steps(steps, loader, one_step, checkpoint_at, out_url, adapt_cfg, progress, "adapt")
    reached = start_step + len(history)
    return finish_training(out_url, _adaptation_checkpoint(model, discriminator, optimizer, frames, cfg, reached),
                           adapt_cfg, start_step, history, started, torch_device, len(frames))


def _adaptation_checkpoint(model, discriminator, optimizer, frames, cfg: Mapping, step: int) -> dict:
    """A detector checkpoint (``train_detector``'s) with the discriminator's weights for resuming."""
    checkpoint = training_checkpoint(model, optimizer, frames, cfg, step)
    checkpoint["discriminator"] = {name: value.detach().cpu().clone()
                                   for name, value in discriminator.state_dict().items()}
    return checkpoint


def _load_adaptation_checkpoint(model, discriminator, url: str, cfg: Mapping) -> dict:
    """Resuming: the detector's and the discriminator's weights from the checkpoint at ``url``."""
    checkpoint = load_training_checkpoint(model, url, cfg["detector"])
    if "discriminator" not in checkpoint:
        raise ConfigError(f"cannot resume from {url!r}: not an `adapt detector` checkpoint (no discriminator); "
                          "write to a new OUT or drop --resume")
    discriminator.load_state_dict(checkpoint["discriminator"])
    return checkpoint

