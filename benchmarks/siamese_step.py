"""How well the Siamese box follows an object one frame on, by frames since its template.

For every ground-truth track of a labelled set, the track's first visible
frame gives the template (as the tracker takes it from the seed proposal);
each later frame ``t`` whose previous frame is visible too is searched from
the true box at ``t - 1``. It prints the mean box IoU with the true box at
``t`` for that stale template, for a fresh one (cut from frame ``t - 1``),
and for keeping the box at ``t - 1`` (no motion), overall and by frames
since the template::

    .venv/bin/python benchmarks/siamese_step.py DATASET [CHECKPOINT ...]   # default: builtin:tracker-small

About 5 minutes a checkpoint on one core for a 40-video Shapes-VIS set.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torchvision.ops import box_iou

from tubelets.io.dataset import YouTubeVISDataset
from tubelets.models.ipdt.checkpoint import load_tracking_models
from tubelets.models.ipdt.features import backbone_levels
from tubelets.models.ipdt.siamese import best_proposals

BINS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, None))  # frames since the template
MIN_SIDE = 2  # pixels: a box thinner than this is an object leaving the frame, not one to search for
WINDOW_INFLUENCE = 0.2  # the tracker's default (tracker.ipdt.window_influence)


@torch.no_grad()
def encodings(detector, model, frames: list, batch: int = 8) -> list:
    """One ``FrameEncoding`` (``P = 1``) per frame."""
    encoded = []
    for start in range(0, len(frames), batch):
        p2, p3, scale = backbone_levels(detector, frames[start:start + batch])
        part = model.encode_frames(p2, p3, scale, frames[0].shape[:2])
        encoded += [part.select(k) for k in range(p2.shape[0])]
    return encoded


def xyxy(bbox) -> torch.Tensor | None:
    """``[1, 4]`` corners of a YouTube-VIS ``[x, y, w, h]`` box, or None when absent or too thin."""
    if bbox is None or min(bbox[2], bbox[3]) < MIN_SIDE:
        return None
    return torch.tensor([[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]], dtype=torch.float32)


@torch.no_grad()
def siamese_box(model, encoding, template: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros(1, dtype=torch.long)
    logits, deltas, anchors = model.track_instances(encoding, zero, template, last)
    return best_proposals(logits, deltas, anchors, WINDOW_INFLUENCE)[0]


@torch.no_grad()
def steps(dataset: YouTubeVISDataset, checkpoint: str) -> np.ndarray:
    """``[S, 4]`` rows of (frames since the template, IoU no motion, IoU stale template, IoU fresh template)."""
    detector, model, _ = load_tracking_models(checkpoint, device="cpu")
    zero = torch.zeros(1, dtype=torch.long)
    rows = []
    for video in dataset.videos:
        encoded = encodings(detector, model, [frame for _, frame in dataset.iter_frames(video.id, source="video")])
        for track in dataset.tracks(video.id):
            boxes = [xyxy(bbox) for bbox in track.bboxes]
            visible = [t for t, box in enumerate(boxes) if box is not None]
            if not visible:
                continue
            first = visible[0]
            stale = model.templates(encoded[first], boxes[first], zero)
            for t in visible[1:]:
                last, truth = boxes[t - 1], boxes[t]
                if last is None:
                    continue
                fresh = model.templates(encoded[t - 1], last, zero)
                ious = [float(box_iou(box, truth)[0, 0])
                        for box in (last, siamese_box(model, encoded[t], stale, last),
                                    siamese_box(model, encoded[t], fresh, last))]
                rows.append((t - first, *ious))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a YouTube-VIS folder with annotations (e.g. from `tubelets synth`)")
    parser.add_argument("checkpoints", nargs="*", default=["builtin:tracker-small"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = YouTubeVISDataset(args.dataset)
    print("| checkpoint | frames since template | steps | IoU, no motion | IoU, stale template | IoU, fresh template |")
    print("|---|---|---|---|---|---|")
    for checkpoint in args.checkpoints:
        rows = steps(dataset, checkpoint)
        for low, high in ((1, None), *BINS):
            chosen = rows[(rows[:, 0] >= low) & (rows[:, 0] <= (high or np.inf))]
            label = "all" if (low, high) == (1, None) else f"{low}+" if high is None else f"{low}-{high}"
            means = chosen[:, 1:].mean(0) if len(chosen) else np.full(3, np.nan)
            print(f"| {checkpoint} | {label} | {len(chosen)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


if __name__ == "__main__":
    main()
