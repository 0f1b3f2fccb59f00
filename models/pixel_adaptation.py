"""Self-supervised adaptation of the pixel-level embedding to unlabelled videos (MAST / CorrFlow colour reconstruction).

``adapt_pixel_embedding(videos, out, cfg)`` fits IPDT's pixel embedding
(:class:`~tubelets.models.ipdt.pixel.PixelEmbedding`, on the frozen
detector's P2 level, stride 4) to raw footage, with no label at all:

* every frame's colours are reconstructed from the colours of one or more
  earlier *memory* frames (``adapt_pixel.memory_gaps`` frames back) through a
  softmax attention between the target's and the memory frames' pixel
  embeddings, restricted to a window of ``radius`` P2 cells around each
  pixel (MAST trains with a radius of 6 cells at stride 4; a global
  attention would cost ``(hw)^2``);
* colours are CIE Lab at the P2 grid (the frame average-pooled 4 x 4), scaled
  by 1/100; the loss is a Huber loss between reconstructed and true colours.
  MAST found Lab regression better than RGB (its channels are decorrelated);
* the embedding must not see the colours it has to reconstruct: the frames
  the backbone encodes have Lab channels dropped (*colour dropout*, set to
  their neutral value: no chroma, or mid lightness). The backbone reads RGB,
  so a dropped channel is set to neutral rather than 0 (an L of 0 is black and
  would erase the chroma that was kept). Each frame is encoded once per
  dropout variant (``colour_dropout``); a step draws a variant per frame.

The affinity is the softmax of *negative squared Euclidean distances*
between embeddings (MAST uses dot products): the tracker compares
embeddings by that distance (FEELVOS's), so what the reconstruction makes
close is what the tracker's matching finds close.

Only the embedding trains; the frozen backbone runs once per frame and
variant (:class:`ColourBank`), as the tracker trainer's feature bank does.
The result is the tracker checkpoint of ``adapt_pixel.init_from`` with its
embedding replaced (the same format, the same detector identity), so it
drops in wherever a tracker checkpoint is read: ``--set
vos.checkpoint=OUT`` (VOS), ``--set tracker.ipdt.checkpoint=OUT`` (VIS).
With ``from_scratch`` the embedding starts from random weights (the other
heads are still the checkpoint's). A run is a function of its seed: step
``s``'s samples come from seeds ``(seed, s, slot)``, so ``--resume``
continues as the uninterrupted run would.

Command line: ``tubelets adapt pixel GLOB OUT.pt`` (:mod:`tubelets.cli_adapt`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tubelets.errors import DatasetError
from tubelets.io.dataset import list_videos
from tubelets.io.video import read_frames
from tubelets.models import training_loop
from tubelets.models.detection_data import AUGMENT_STREAM, INIT_STREAM, sample_seed
from tubelets.models.ipdt import geometry
from tubelets.models.ipdt.checkpoint import (
    check_detector,
    model_from_checkpoint,
    read_tracker_checkpoint,
    tracker_info,
)
from tubelets.models.ipdt.features import backbone_levels
from tubelets.models.ipdt.pixel import PixelEmbedding, local_distances
from tubelets.models.ipdt.train import load_training_checkpoint, run_tracker_steps
from tubelets.models.loading import load_detector, resolve_device

SECTION = "adapt_pixel"
P2_STRIDE = 4
LAB_CHANNELS = "Lab"
NEUTRAL = torch.tensor([0.5, 0.0, 0.0])  # Lab / 100 of mid grey: what a dropped channel becomes

# sRGB (D65) <-> CIE XYZ, and the D65 white point (the standard constants).
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_EPSILON = (6 / 29) ** 3


@dataclasses.dataclass(frozen=True)
class PixelAdaptResult:
    """What a run did. ``loss`` is the mean reconstruction loss of the last ``min(50, steps run)`` steps."""

    checkpoint_url: str
    checkpoint_id: str
    detector_checkpoint_id: str
    start_step: int
    steps: int
    loss: float
    wall_seconds: float
    device: str
    frames: int  # decoded frames samples are drawn from


# --- colour -----------------------------------------------------------------------------------------------------


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` sRGB in ``[0, 1]`` -> CIE Lab (D65) divided by 100 (L in ``[0, 1]``, a and b about ``±1``)."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,...jhw->...ihw", _RGB_TO_XYZ.to(rgb), linear) / _WHITE.to(rgb)[:, None, None]
    f = torch.where(xyz > _EPSILON, xyz.clamp(min=_EPSILON) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([1.16 * fy - 0.16, 5.0 * (fx - fy), 2.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_lab`, clipped to the sRGB gamut ``[0, 1]``."""
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 0.16) / 1.16
    f = torch.stack([fy + a / 5.0, fy, fy - b / 2.0], dim=-3)
    xyz = torch.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE.to(lab)[:, None, None]
    linear = torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(_RGB_TO_XYZ).to(lab), xyz).clamp(0, 1)
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear)


def drop_channels(lab: torch.Tensor, dropped: str) -> torch.Tensor:
    """``lab`` ``[..., 3, H, W]`` (Lab / 100) with the channels named in ``dropped`` (of ``"Lab"``) set to neutral."""
    unknown = set(dropped) - set(LAB_CHANNELS)
    if unknown or not dropped:
        raise ValueError(f"colour dropout names Lab channels (a non-empty subset of 'Lab'), got {dropped!r}")
    out = lab.clone()
    for channel in dropped:
        index = LAB_CHANNELS.index(channel)
        out[..., index, :, :] = NEUTRAL[index]
    return out


def colour_dropped_frames(frames: np.ndarray, dropped: str) -> np.ndarray:
    """``uint8 [T, H, W, 3]`` RGB frames with the Lab channels ``dropped`` neutralised, as the backbone's input."""
    rgb = torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 255
    out = lab_to_rgb(drop_channels(rgb_to_lab(rgb), dropped))
    return (out * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def p2_colours(frames: np.ndarray, scale: float, p2_size: tuple[int, int]) -> torch.Tensor:
    """``float [T, 3, h, w]``: the frames' Lab / 100 averaged over each P2 cell (the reconstruction target).

    ``scale`` and ``p2_size`` as the backbone resized and padded the frames (cells of the padding get 0).
    """
    rgb = torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 255
    lab = rgb_to_lab(rgb)
    count, channels, height, width = lab.shape
    return geometry.masks_to_p2(lab.reshape(-1, height, width), scale, p2_size).reshape(count, channels, *p2_size)


# --- the objective ----------------------------------------------------------------------------------------------


def reconstruct_colours(target: torch.Tensor, memory: torch.Tensor, memory_colours: torch.Tensor,
                        radius: int) -> torch.Tensor:
    """Each target pixel's colour as the attention-weighted mean of the memory pixels' colours near it.

    ``target`` ``[B, D, h, w]`` embeddings; ``memory`` ``[B, M, D, h, w]`` the
    embeddings of ``M`` memory frames per target and ``memory_colours``
    ``[B, M, C, h, w]`` their colours. The attention is a softmax over the
    ``M * (2 radius + 1)^2`` memory pixels within ``radius`` cells of each
    target pixel, of minus their squared embedding distances. Returns
    ``[B, C, h, w]``.
    """
    count, frames, dim, height, width = memory.shape
    channels, kernel = memory_colours.shape[2], 2 * radius + 1
    repeated = target[:, None].expand(-1, frames, -1, -1, -1).reshape(count * frames, dim, height, width)
    squared = local_distances(repeated, memory.reshape(count * frames, dim, height, width), radius)
    weights = torch.softmax(-squared.reshape(count, frames * kernel * kernel, height * width), dim=1)
    neighbours = F.unfold(memory_colours.reshape(count * frames, channels, height, width), kernel, padding=radius)
    neighbours = neighbours.reshape(count, frames, channels, kernel * kernel, height * width).transpose(1, 2)
    neighbours = neighbours.reshape(count, channels, frames * kernel * kernel, height * width)
    return (weights[:, None] * neighbours).sum(2).reshape(count, channels, height, width)


def reconstruction_loss(target: torch.Tensor, memory: torch.Tensor, memory_colours: torch.Tensor,
                        target_colours: torch.Tensor, radius: int, delta: float) -> torch.Tensor:
    """Huber loss of :func:`reconstruct_colours` against ``target_colours``, mean over pixels and channels.

    Divided by ``delta`` (torch's smooth L1): the loss reads as an L1 error in Lab / 100 units.
    """
    predicted = reconstruct_colours(target, memory, memory_colours, radius)
    return F.smooth_l1_loss(predicted, target_colours, beta=delta)


def propagate_labels(embeddings: torch.Tensor, prompts: Mapping[int, torch.Tensor], memory: int,
                     radius: int) -> torch.Tensor:
    """MAST's inference: label maps carried from frame to frame by the reconstruction's attention, no learned head.

    ``embeddings`` ``[T, D, h, w]``: a video's frames; ``prompts[t]`` ``[K + 1, h, w]``: the P2 coverage of the
    objects prompted in frame ``t`` (channel ``k`` object ``k``, channel 0 unused). Frame ``t``'s labels are
    :func:`reconstruct_colours` of the labels of the ``memory`` frames before it (short-term memory only: MAST's
    long-term memory needs its ROI search, objects move out of a local window), then each prompt overrides the
    cells it covers. Returns ``[T, K + 1, h, w]`` label probabilities (channel 0: background).
    """
    count, _, height, width = embeddings.shape
    channels = next(iter(prompts.values())).shape[0] if prompts else 1
    labels: list[torch.Tensor] = []
    for t in range(count):
        if t == 0:
            current = torch.zeros((channels, height, width), dtype=embeddings.dtype, device=embeddings.device)
            current[0] = 1
        else:
            frames = sorted({max(0, t - gap) for gap in range(1, memory + 1)})
            current = reconstruct_colours(embeddings[t][None], embeddings[frames][None],
                                          torch.stack([labels[f] for f in frames])[None], radius)[0]
        if t in prompts:
            covered = prompts[t][1:].sum(0).clamp(max=1)
            current = current * (1 - covered) + torch.cat([torch.zeros_like(covered)[None], prompts[t][1:]])
        labels.append(current)
    return torch.stack(labels)


# --- data -------------------------------------------------------------------------------------------------------


class ColourBank:
    """Every frame of the videos, encoded once per colour-dropout variant by the frozen backbone.

    ``p2[v][k]`` is ``float16 [T, C, h, w]``: video ``v``'s P2 maps of its
    frames with variant ``k`` of ``dropout`` applied; ``colours[v]`` ``float
    [T, 3, h, w]`` its true Lab / 100 on the P2 grid. Frames are decoded with
    the ``io:`` settings (``max_size``, ``stride``), as the pipeline decodes them.
    """

    def __init__(self, detector, urls: Sequence[str], dropout: Sequence[str], io_cfg: Mapping,
                 frames_per_video: int | None, progress: bool):
        self.p2: list[list[torch.Tensor]] = []
        self.colours: list[torch.Tensor] = []
        for url in tqdm(urls, disable=not progress, desc="encode frames", mininterval=2.0):
            frames = read_frames(url, stride=int(io_cfg.get("stride") or 1), max_size=io_cfg.get("max_size")).frames
            frames = frames[:frames_per_video] if frames_per_video else frames
            variants = [encode_p2(detector, colour_dropped_frames(frames, dropped)) for dropped in dropout]
            self.p2.append([p2 for p2, _ in variants])
            p2, scale = variants[0]
            self.colours.append(p2_colours(frames, scale, tuple(p2.shape[-2:])))

    @property
    def frames(self) -> int:
        return sum(len(colours) for colours in self.colours)


def encode_p2(detector, frames: np.ndarray, chunk: int = 8) -> tuple[torch.Tensor, float]:
    """``(float16 [T, C, h, w] P2 maps on the CPU, scale)`` of ``uint8 [T, H, W, 3]`` frames, ``chunk`` at a time."""
    parts = [backbone_levels(detector, list(frames[i: i + chunk])) for i in range(0, len(frames), chunk)]
    return torch.cat([p2 for p2, _, _ in parts]).to("cpu", torch.float16), parts[0][2]


@dataclasses.dataclass(frozen=True)
class ColourSample:
    """One target frame and its memory frames (all of video ``video``), each with its dropout variant."""

    video: int
    target: int
    memory: tuple[int, ...]
    variants: tuple[int, ...]  # of the target, then of each memory frame


def draw_sample(bank: ColourBank, seed: int, gaps: Sequence[int]) -> ColourSample:
    """A pure function of ``seed``: a video with frames to spare, a target, memory ``gaps`` back (or forward)."""
    rng = np.random.default_rng(seed)
    span = max(gaps)
    videos = [v for v, colours in enumerate(bank.colours) if len(colours) > span]
    if not videos:
        raise DatasetError(f"no video has more than {span} frames (the largest of {SECTION}.memory_gaps)")
    video = videos[int(rng.integers(len(videos)))]
    length = len(bank.colours[video])
    # Either direction in time: the tracker follows objects backward from a proposal too.
    direction = 1 if rng.random() < 0.5 else -1
    target = int(rng.integers(span, length)) if direction == 1 else int(rng.integers(0, length - span))
    memory = tuple(target - direction * gap for gap in gaps)
    variants = tuple(int(v) for v in rng.integers(len(bank.p2[video]), size=1 + len(memory)))
    return ColourSample(video, target, memory, variants)


def sample_tensors(bank: ColourBank, samples: Sequence[ColourSample], device: torch.device):
    """``(target P2 [B, C, h, w], memory P2 [B*M, C, h, w], memory colours [B, M, 3, h, w], target colours)``."""
    def p2(video: int, frame: int, variant: int) -> torch.Tensor:
        return bank.p2[video][variant][frame]

    target = torch.stack([p2(s.video, s.target, s.variants[0]) for s in samples])
    memory = torch.stack([p2(s.video, f, v) for s in samples for f, v in zip(s.memory, s.variants[1:])])
    memory_colours = torch.stack([bank.colours[s.video][list(s.memory)] for s in samples])
    target_colours = torch.stack([bank.colours[s.video][s.target] for s in samples])
    return (target.to(device).float(), memory.to(device).float(), memory_colours.to(device),
            target_colours.to(device))


# --- training ---------------------------------------------------------------------------------------------------


def step_loss(embedding: PixelEmbedding, bank: ColourBank, samples: Sequence[ColourSample], adapt_cfg: Mapping,
              device: torch.device) -> torch.Tensor:
    """The mean reconstruction loss of ``samples``, one batched forward per frame size among them."""
    by_size: dict[tuple, list[ColourSample]] = {}
    for sample in samples:
        by_size.setdefault(tuple(bank.colours[sample.video].shape[-2:]), []).append(sample)
    total = torch.zeros((), device=device)
    for group in by_size.values():
        target, memory, memory_colours, target_colours = sample_tensors(bank, group, device)
        embedded = embedding(torch.cat([target, memory]))
        target_embedding, memory_embedding = embedded[: len(group)], embedded[len(group):]
        memory_embedding = memory_embedding.reshape(len(group), -1, *memory_embedding.shape[1:])
        loss = reconstruction_loss(target_embedding, memory_embedding, memory_colours, target_colours,
                                   int(adapt_cfg["radius"]), float(adapt_cfg["huber_delta"]))
        total = total + loss * len(group) / len(samples)
    return total


def adapt_pixel_embedding(videos: str, out: str, cfg: Mapping[str, Any], resume: bool = False,
                          device: str = "auto", progress: bool = True) -> PixelAdaptResult:
    """Train ``adapt_pixel.init_from``'s pixel embedding on the videos ``videos`` matches; checkpoints to ``out``."""
    started = time.monotonic()
    adapt_cfg = cfg[SECTION]
    torch_device = resolve_device(device)
    urls = list_videos(videos)
    if not urls:
        raise DatasetError(f"{videos!r} matches no video to adapt the pixel embedding on")
    init_url = adapt_cfg["init_from"]
    init = read_tracker_checkpoint(init_url)
    detector_section = dict(init["detector"]["section"])
    detector, detector_info = load_detector({"detector": {**detector_section, "device": str(torch_device)}})
    check_detector(tracker_info(init, init_url), detector_info)
    detector.requires_grad_(False)
    model = model_from_checkpoint(init, init_url)
    if adapt_cfg["from_scratch"]:
        torch.manual_seed(sample_seed(int(adapt_cfg["seed"]), INIT_STREAM))
        model.embedding = PixelEmbedding(model.config.feature_channels, model.config.embedding_dim)
    model.requires_grad_(False)
    model.embedding.requires_grad_(True)
    bank = ColourBank(detector, urls, adapt_cfg["colour_dropout"], cfg["io"], adapt_cfg["frames_per_video"], progress)
    optimizer = training_loop.make_optimizer(model.embedding, adapt_cfg)
    start_step = 0
    if resume:
        start_step = training_loop.resume(out, optimizer, adapt_cfg, SECTION,
                                          lambda url: load_training_checkpoint(model, url, detector_info))
    model.to(torch_device).eval()  # the embedding has no dropout or batch norm: eval changes nothing there
    training_loop.optimizer_to(optimizer, torch_device)

    final, history = run_tracker_steps(
        model, optimizer, start_step, lambda step: train_step(model.embedding, bank, optimizer, step, adapt_cfg,
                                                              torch_device),
        out, cfg, adapt_cfg, detector_info, detector_section, progress, "adapt pixel")
    return PixelAdaptResult(
        checkpoint_url=out,
        checkpoint_id=final["checkpoint_id"],
        detector_checkpoint_id=detector_info.checkpoint_id,
        start_step=start_step,
        steps=int(adapt_cfg["steps"]),
        loss=training_loop.recent_mean(history, "reconstruction"),
        wall_seconds=time.monotonic() - started,
        device=str(torch_device),
        frames=bank.frames,
    )


def train_step(embedding: PixelEmbedding, bank: ColourBank, optimizer: torch.optim.Optimizer, step: int,
               adapt_cfg: Mapping, device: torch.device) -> dict[str, float]:
    """One optimiser step on ``batch_size`` samples drawn from seeds ``(seed, step, slot)``."""
    seed, gaps = int(adapt_cfg["seed"]), [int(g) for g in adapt_cfg["memory_gaps"]]
    samples = [draw_sample(bank, sample_seed(seed, AUGMENT_STREAM, step, slot), gaps)
               for slot in range(int(adapt_cfg["batch_size"]))]
    loss = step_loss(embedding, bank, samples, adapt_cfg, device)
    training_loop.optimizer_step(embedding, optimizer, loss, step, adapt_cfg, SECTION)
    return {"reconstruction": float(loss.item())}

