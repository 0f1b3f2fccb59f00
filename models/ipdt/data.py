"""Training samples for the IPDT heads: a reference, a previous and a target frame of one ground-truth instance.

A sample imitates one tracking step. From a YouTube-VIS data set (read
through :class:`~tubelets.io.dataset.YouTubeVISDataset`) it takes an instance
visible in a *reference* frame ``r`` (where its proposal would be), a *target*
frame ``t`` up to ``max_gap`` frames away, and the *previous* frame ``p`` one
step before ``t`` towards ``r``. Then, drawn from the sample's own seed:

* the reference box is jittered (a proposal is not exact), the previous box
  more (the last tracked box drifts), the previous mask is shifted and
  dilated or eroded (the last predicted mask is imperfect);
* *motion*: the target frame (and its mask) is shifted and rescaled, faking
  faster and less regular motion than the data set has;
* *occlusion*: patches cut from another video's frame are pasted over the
  instance; the covered pixels leave its mask; sometimes one patch, cut
  around another object, hides all of it (*hidden*: the instance is where
  it was, behind something, and the heads must say "lost" there rather than
  take the occluder for it);
* *absence*: sometimes the target is a frame of another video, so the
  instance is not there (the discriminator must learn to say "lost");
* *distractors* (DaSiamRPN's distractor-aware training): sometimes the
  previous box and mask are another instance of the same video, as when the
  tracker has drifted onto a neighbour; the target stays the reference
  instance. The boxes of the video's other instances in the target frame
  (``other_boxes``) let the loss weigh the proposals on them as hard
  negatives: a negative from another video is easy, a look-alike next to
  the instance is what a tracker confuses.

The backbone is frozen, so every frame's FPN levels are computed once
(:class:`FeatureBank`) and the motion and occlusion augmentations are applied
to the target frame's *feature maps* (:func:`augment_levels`: the same affine
warp as the mask, patches of another frame's feature cells), not to its
pixels: training then never runs the backbone, which is most of the cost of
a step on a CPU. The backbone is nearly translation-equivariant, so a warp of
its maps is close to the maps of a warped frame; pasted feature patches are a
coarser occluder than pasted pixels (their borders are sharp at stride 4/8).

Masks are ``bool [H, W]``; boxes ``float32 [4]`` ``x1, y1, x2, y2`` frame
pixels. The target mask may be empty (absent).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from tubelets import masks as rle
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.synth import MIN_VISIBLE_PIXELS


FrameKey = tuple[int, int]  # (video id, frame)


@dataclasses.dataclass(frozen=True)
class Occluder:
    """A patch: frame-pixel rectangle ``box`` of the target gets the content at ``source_box`` of ``source``."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2
    source: FrameKey
    source_box: tuple[int, int, int, int]


@dataclasses.dataclass
class TrackingSample:
    """One training step of one instance (see the module docstring); frames are named by key."""

    reference_key: FrameKey
    previous_key: FrameKey
    target_key: FrameKey  # before augmentation (another video's frame when absent)
    motion: np.ndarray  # float32 [2, 3] affine_grid theta of the target's warp
    occluders: list[Occluder]
    reference_mask: np.ndarray
    previous_mask: np.ndarray  # perturbed
    target_mask: np.ndarray  # after motion and occlusion; empty when absent
    reference_box: np.ndarray  # jittered
    previous_box: np.ndarray  # jittered: where the search window is centred
    # [K, 4]: the video's other instances visible in the target (after motion); none when absent
    other_boxes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4), np.float32))


@dataclasses.dataclass(frozen=True)
class _Anchor:
    video_id: int
    track: int
    frame: int


class TrackingSamples:
    """Samples drawn from a YouTube-VIS data set; ``sample(seed)`` is a pure function of the seed."""

    def __init__(self, dataset_url: str, augment: Mapping, max_gap: int = 8):
        self.dataset = YouTubeVISDataset(dataset_url)
        self.augment = dict(augment)
        self.max_gap = int(max_gap)
        self._masks: dict[int, list[list]] = {}
        self.anchors = self._index()
        if not self.anchors:
            raise ValueError(f"data set {dataset_url!r} has no annotated instance to train the tracker on")

    def __len__(self) -> int:
        return len(self.anchors)

    def _index(self) -> list[_Anchor]:
        anchors = []
        for video in self.dataset.videos:
            tracks = self.dataset.tracks(video.id)
            self._masks[video.id] = [track.segmentations for track in tracks]
            for index, track in enumerate(tracks):
                anchors += [_Anchor(video.id, index, t) for t, s in enumerate(track.segmentations) if s is not None]
        return anchors

    def sample(self, seed: int) -> TrackingSample:
        rng = np.random.default_rng(seed)
        anchor = self.anchors[int(rng.integers(len(self.anchors)))]
        target, previous = self._pick_frames(rng, anchor)
        reference_mask = self._mask(anchor.video_id, anchor.track, anchor.frame)
        previous_mask = self._mask(anchor.video_id, anchor.track, previous)
        target_key = (anchor.video_id, target)
        target_mask = self._mask(anchor.video_id, anchor.track, target)
        if rng.random() < float(self.augment["absent"]):
            target_key, target_mask, others = self._other_frame(rng, anchor.video_id), np.zeros_like(target_mask), []
        else:
            others = self._others(anchor, target)  # decoded only when the instance is in the target
        previous_mask = self._maybe_distractor(rng, anchor, previous, previous_mask)
        motion = motion_theta(rng, self.augment)
        target_mask = warp_mask(target_mask, motion)
        occluders = self._occluders(rng, target_mask, self._other_frame(rng, anchor.video_id))
        for occluder in occluders:
            x1, y1, x2, y2 = occluder.box
            target_mask[y1:y2, x1:x2] = False
        if target_mask.sum() < MIN_VISIBLE_PIXELS:
            target_mask = np.zeros_like(target_mask)
        return TrackingSample(
            reference_key=(anchor.video_id, anchor.frame),
            previous_key=(anchor.video_id, previous),
            target_key=target_key,
            motion=motion,
            occluders=occluders,
            reference_mask=reference_mask,
            previous_mask=perturb_mask(previous_mask, rng, int(self.augment["mask_noise"])),
            target_mask=target_mask,
            reference_box=jitter_box(tight_box(reference_mask), rng, float(self.augment["reference_jitter"])),
            previous_box=jitter_box(tight_box(previous_mask), rng, float(self.augment["previous_jitter"])),
            other_boxes=visible_boxes([warp_mask(mask, motion) for mask in others]),
        )

    def _others(self, anchor: _Anchor, frame: int) -> list[np.ndarray]:
        """Masks of the video's other instances visible in ``frame``."""
        count = len(self._masks[anchor.video_id])
        masks = [self._mask(anchor.video_id, track, frame) for track in range(count) if track != anchor.track]
        return [mask for mask in masks if mask.sum() >= MIN_VISIBLE_PIXELS]

    def _occluders(self, rng: np.random.Generator, mask: np.ndarray, source: FrameKey) -> list[Occluder]:
        """The patches over the instance's target ``mask``; with chance ``augment["hidden"]``, one hiding it whole."""
        hidden = float(self.augment.get("hidden", 0.0))  # configs from before the key: no hidden samples
        # The chance is drawn only when it is on, so a recipe without it keeps its samples (and weights).
        if hidden and rng.random() < hidden and mask.any():
            return [hiding_occluder(mask, source, self._object_boxes(source), rng)]
        return sample_occluders(mask, source, rng, self.augment)

    def _object_boxes(self, key: FrameKey) -> np.ndarray:
        """``float32 [K, 4]`` boxes of the instances visible in frame ``key``."""
        video_id, frame = key
        return visible_boxes([self._mask(video_id, track, frame) for track in range(len(self._masks[video_id]))])

    def _maybe_distractor(self, rng: np.random.Generator, anchor: _Anchor, previous: int,
                          previous_mask: np.ndarray) -> np.ndarray:
        """With chance ``augment["distractor"]``, another instance's mask in ``previous`` (the tracker drifted)."""
        drifted = rng.random() < float(self.augment.get("distractor", 0.0))
        others = self._others(anchor, previous) if drifted else []
        return others[int(rng.integers(len(others)))] if others else previous_mask

    @property
    def frame_size(self) -> tuple[int, int]:
        """``(H, W)`` of the data set's frames; training needs one size."""
        sizes = {(video.height, video.width) for video in self.dataset.videos}
        if len(sizes) != 1:
            raise ValueError(f"tracker training needs frames of one size, the data set has {sorted(sizes)}")
        return sizes.pop()

    def _pick_frames(self, rng: np.random.Generator, anchor: _Anchor) -> tuple[int, int]:
        """``(target, previous)``: ``previous`` is one step before ``target`` towards the reference, visible."""
        segmentations = self._masks[anchor.video_id][anchor.track]
        length = len(segmentations)
        options = []
        for gap in range(1, self.max_gap + 1):
            for direction in (1, -1):
                target = anchor.frame + direction * gap
                previous = target - direction
                if 0 <= target < length and segmentations[previous] is not None:
                    options.append((target, previous))
        if not options:  # a one-frame video: the reference frame is its own previous and target
            return anchor.frame, anchor.frame
        return options[int(rng.integers(len(options)))]

    def _mask(self, video_id: int, track: int, frame: int) -> np.ndarray:
        segmentation = self._masks[video_id][track][frame]
        record = self.dataset.video(video_id)
        if segmentation is None:
            return np.zeros((record.height, record.width), dtype=bool)
        return rle.decode(segmentation).astype(bool)

    def _other_frame(self, rng: np.random.Generator, video_id: int) -> FrameKey:
        """A random frame of another video of the same size (the same video when it is the only one)."""
        record = self.dataset.video(video_id)
        others = [
            v for v in self.dataset.videos if v.id != video_id and (v.height, v.width) == (record.height, record.width)
        ]
        other = others[int(rng.integers(len(others)))] if others else record
        return other.id, int(rng.integers(other.length))


def tight_box(mask: np.ndarray) -> np.ndarray:
    """``float32 [4]`` pixel-edge box of a non-empty ``bool [H, W]`` mask."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def visible_boxes(masks: list[np.ndarray]) -> np.ndarray:
    """``float32 [K, 4]`` boxes of the masks that keep at least ``MIN_VISIBLE_PIXELS`` pixels."""
    boxes = [tight_box(mask) for mask in masks if mask.sum() >= MIN_VISIBLE_PIXELS]
    return np.stack(boxes) if boxes else np.zeros((0, 4), np.float32)


def jitter_box(box: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """The box with its centre moved and its sides scaled by up to ``amount`` of its size."""
    centre, size = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
    centre = centre + rng.uniform(-amount, amount, 2) * size
    size = size * np.exp(rng.uniform(-amount, amount, 2))
    return np.concatenate([centre - size / 2, centre + size / 2]).astype(np.float32)


def perturb_mask(mask: np.ndarray, rng: np.random.Generator, pixels: int) -> np.ndarray:
    """Shift by up to ``pixels`` and dilate or erode by up to ``pixels`` (a tracked mask's typical errors)."""
    if pixels <= 0:
        return mask
    dy, dx = rng.integers(-pixels, pixels + 1, 2)
    shifted = np.roll(mask, (int(dy), int(dx)), axis=(0, 1))
    radius = int(rng.integers(0, pixels + 1))
    if radius == 0:
        return shifted
    tensor = torch.from_numpy(shifted.astype(np.float32))[None, None]
    kernel = 2 * radius + 1
    if rng.random() < 0.5:
        out = F.max_pool2d(tensor, kernel, stride=1, padding=radius)
    else:
        out = -F.max_pool2d(-tensor, kernel, stride=1, padding=radius)
    result = out[0, 0].numpy() > 0.5
    return result if result.any() else shifted


def motion_theta(rng: np.random.Generator, augment: Mapping) -> np.ndarray:
    """``float32 [2, 3]``: a random shift (up to ``augment["shift"]`` of the frame) and scale (``augment["scale"]``).

    In ``affine_grid`` convention (output -> input, normalised coordinates), so
    the same theta warps a mask and a feature map that cover the frame.
    """
    shift = float(augment["shift"])
    low, high = (float(v) for v in augment["scale"])
    scale = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    tx, ty = rng.uniform(-shift, shift, 2) * 2  # normalised coordinates span 2
    return np.array([[1 / scale, 0.0, -tx], [0.0, 1 / scale, -ty]], dtype=np.float32)


def warp_maps(maps: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``[B, C, h, w]`` maps warped by ``theta`` ``[B, 2, 3]``; outside the map is 0."""
    grid = F.affine_grid(theta, list(maps.shape), align_corners=False)
    return F.grid_sample(maps, grid, mode=mode, padding_mode="zeros", align_corners=False)


def warp_mask(mask: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """A ``bool [H, W]`` mask warped by ``theta`` (nearest neighbour)."""
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    return warp_maps(tensor, torch.from_numpy(theta)[None], mode="nearest")[0, 0].numpy() > 0.5


def sample_occluders(mask: np.ndarray, source: FrameKey, rng: np.random.Generator, augment: Mapping) -> list[Occluder]:
    """Up to ``augment["occluders"]`` patches over the instance, sized ``occluder_size`` of its box, from ``source``."""
    if not mask.any():
        return []
    height, width = mask.shape
    box = tight_box(mask)
    size = box[2:] - box[:2]
    low, high = (float(v) for v in augment["occluder_size"])
    occluders = []
    for _ in range(int(rng.integers(0, int(augment["occluders"]) + 1))):
        pw, ph = np.maximum(4, size * rng.uniform(low, high, 2)).astype(int)
        cx, cy = rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])
        x1, y1 = int(np.clip(cx - pw / 2, 0, width - 1)), int(np.clip(cy - ph / 2, 0, height - 1))
        x2, y2 = min(width, x1 + int(pw)), min(height, y1 + int(ph))
        occluders.append(_patch_from(source, (x1, y1, x2, y2), rng, width, height))
    return occluders


def hiding_occluder(mask: np.ndarray, source: FrameKey, object_boxes: np.ndarray,
                    rng: np.random.Generator) -> Occluder:
    """One patch over a non-empty ``mask`` and a margin of up to half its box, cut around an object of ``source``.

    What hides an object is most often another object, so the patch is
    centred on one of ``object_boxes`` (``[K, 4]``, the source frame's
    instances) where there is one: the heads learn that a different object
    where the instance was is not the instance. With none, anywhere.
    """
    height, width = mask.shape
    box = tight_box(mask)
    margin = (box[2:] - box[:2]) * rng.uniform(0.0, 0.5, 2)
    x1, y1 = (int(v) for v in np.maximum(0, np.floor(box[:2] - margin)))
    x2, y2 = (int(v) for v in np.minimum([width, height], np.ceil(box[2:] + margin)))
    if not len(object_boxes):
        return _patch_from(source, (x1, y1, x2, y2), rng, width, height)
    centre = object_boxes[int(rng.integers(len(object_boxes)))].reshape(2, 2).mean(0)
    sx = int(np.clip(round(centre[0] - (x2 - x1) / 2), 0, width - (x2 - x1)))
    sy = int(np.clip(round(centre[1] - (y2 - y1) / 2), 0, height - (y2 - y1)))
    return _occluder_at((x1, y1, x2, y2), source, sx, sy)


def _patch_from(source: FrameKey, box: tuple[int, int, int, int], rng: np.random.Generator,
                width: int, height: int) -> Occluder:
    """An occluder over ``box`` whose content is a same-sized rectangle anywhere in ``source``."""
    x1, y1, x2, y2 = box
    sx, sy = int(rng.integers(0, width - (x2 - x1) + 1)), int(rng.integers(0, height - (y2 - y1) + 1))
    return _occluder_at(box, source, sx, sy)


def _occluder_at(box: tuple[int, int, int, int], source: FrameKey, sx: int, sy: int) -> Occluder:
    """An occluder over ``box`` whose content is the same-sized rectangle of ``source`` at ``(sx, sy)``."""
    x1, y1, x2, y2 = box
    return Occluder(box, source, (sx, sy, sx + x2 - x1, sy + y2 - y1))


class FeatureBank:
    """The frozen backbone's P2 and P3 of every frame, computed once (~1 MB a 256x192 frame)."""

    def __init__(self, detector: torch.nn.Module, dataset: YouTubeVISDataset, batch_size: int = 8,
                 progress: bool = False, source: str = "jpeg"):
        from tqdm.auto import tqdm

        from tubelets.models.ipdt.features import backbone_levels

        self._levels: dict[FrameKey, tuple[torch.Tensor, torch.Tensor]] = {}
        self.scale = 1.0
        keys = [(video.id, t) for video in dataset.videos for t in range(video.length)]
        bar = tqdm(total=len(keys), disable=not progress, mininterval=2.0, desc="backbone features")
        for video in dataset.videos:
            # source "video": the mp4's decoded frames, as the pipeline sees them (H.264 differs from JPEG).
            frames = list(dataset.iter_frames(video.id, source=source))
            for start in range(0, len(frames), batch_size):
                chunk = frames[start : start + batch_size]
                p2, p3, self.scale = backbone_levels(detector, [frame for _, frame in chunk])
                for row, (t, _) in enumerate(chunk):
                    self._levels[(video.id, t)] = (p2[row].cpu(), p3[row].cpu())
                bar.update(len(chunk))
        bar.close()

    def __len__(self) -> int:
        return len(self._levels)

    def levels(self, keys: list[FrameKey], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(P2 [B, C, h, w], P3 [B, C, h/2, w/2])`` float32 of the frames ``keys``."""
        p2 = torch.stack([self._levels[key][0] for key in keys]).to(device)
        p3 = torch.stack([self._levels[key][1] for key in keys]).to(device)
        return p2, p3


def augment_levels(bank: FeatureBank, samples: list[TrackingSample], frame_size: tuple[int, int],
                   device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The targets' P2/P3 with each sample's motion warp and occluder patches applied in feature space."""
    p2, p3 = bank.levels([s.target_key for s in samples], device)
    theta = torch.as_tensor(np.stack([s.motion for s in samples]), device=device)
    levels = []
    for level, stride in ((p2, 4), (p3, 8)):
        # The maps cover the frame plus the detector's bottom/right padding: move theta onto the map's extent.
        covered = torch.tensor([frame_size[1], frame_size[0]], dtype=torch.float32, device=device) * bank.scale
        fraction = covered / (torch.tensor([level.shape[-1], level.shape[-2]], device=device) * stride)
        levels.append(warp_maps(level, frame_theta_to_map(theta, fraction)))
    p2, p3 = levels
    for row, sample in enumerate(samples):
        for occluder in sample.occluders:
            source_p2, source_p3 = bank.levels([occluder.source], device)
            _paste_cells(p2[row], source_p2[0], occluder, bank.scale / 4)
            _paste_cells(p3[row], source_p3[0], occluder, bank.scale / 8)
    return p2, p3


def frame_theta_to_map(theta: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    """A scale+shift ``theta`` ``[B, 2, 3]`` over the frame, as the same warp over a map whose first
    ``fraction`` ``[2]`` (x, y) of each side is the frame (normalised coordinates, align_corners=False)."""
    scale = torch.stack([theta[:, 0, 0], theta[:, 1, 1]], dim=1)  # [B, 2]
    shift = theta[:, :, 2]
    # map -> frame: f = (m + 1) / fraction - 1; frame warp: f_in = scale * f_out + shift; frame -> map.
    new_shift = scale * (1 - fraction) + fraction * (shift + 1) - 1
    out = theta.clone()
    out[:, :, 2] = new_shift
    return out


def _paste_cells(target: torch.Tensor, source: torch.Tensor, occluder: Occluder, cells_per_pixel: float) -> None:
    """Copy the source rectangle's cells over the target rectangle's (both boxes in frame pixels)."""

    def span(box):
        x1, y1, x2, y2 = box
        left, top = int(np.floor(x1 * cells_per_pixel)), int(np.floor(y1 * cells_per_pixel))
        return (left, top, max(1, int(np.ceil((x2 - x1) * cells_per_pixel))),
                max(1, int(np.ceil((y2 - y1) * cells_per_pixel))))

    left, top, w, h = span(occluder.box)
    s_left, s_top, _, _ = span(occluder.source_box)
    h = min(h, target.shape[-2] - top, source.shape[-2] - s_top)
    w = min(w, target.shape[-1] - left, source.shape[-1] - s_left)
    if h > 0 and w > 0:
        target[:, top : top + h, left : left + w] = source[:, s_top : s_top + h, s_left : s_left + w]
