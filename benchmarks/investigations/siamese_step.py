"""How well the Siamese box follows an object one frame on, by frames since its template.

For every ground-truth track of a labelled set, the track's first visible
frame gives the template (as the tracker takes it from the seed proposal);
each later frame ``t`` whose previous frame is visible too is searched from
the true box at ``t - 1``. It prints the mean box IoU with the true box at
``t`` for that stale template, for a fresh one (cut from frame ``t - 1``),
and for keeping the box at ``t - 1`` (no motion), overall and by frames
since the template::

    .venv/bin/python benchmarks/investigations/siamese_step.py DATASET [CHECKPOINT ...]  # builtin:tracker-small

About a minute for two checkpoints on one core on a 40-video Shapes-VIS set (each video is decoded once).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torchvision.ops import box_convert, box_iou

from tubelets.io.dataset import YouTubeVISDataset
from tubelets.models.ipdt.checkpoint import load_tracking_models
from tubelets.models.ipdt.features import FeatureWindow
from tubelets.models.ipdt.siamese import best_proposals

BINS = (("1", 1, 1), ("2-3", 2, 3), ("4-7", 4, 7), ("8-15", 8, 15), ("16+", 16, np.inf))  # frames since the template
MIN_SIDE = 2  # pixels: a box thinner than this is an object leaving the frame, not one to search for
WINDOW_INFLUENCE = 0.2  # the tracker's default (tracker.ipdt.window_influence)
ZERO = torch.zeros(1, dtype=torch.long)  # frame index 0 of a one-frame encoding


def true_box(bbox) -> torch.Tensor | None:
    """``[1, 4]`` corners of a YouTube-VIS ``[x, y, w, h]`` box, or None when absent or too thin."""
    if bbox is None or min(bbox[2], bbox[3]) < MIN_SIDE:
        return None
    return box_convert(torch.tensor([bbox], dtype=torch.float32), "xywh", "xyxy")


def siamese_box(model, encoding, template: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    logits, deltas, anchors = model.track_instances(encoding, ZERO, template, last)
    return best_proposals(logits, deltas, anchors, WINDOW_INFLUENCE)[0]


def video_steps(dataset: YouTubeVISDataset, video, frames: list, detector, model) -> list[tuple]:
    """Rows of (frames since the template, IoU no motion, IoU stale template, IoU fresh template) of one video."""
    encoded = FeatureWindow(detector, model, frames.__getitem__, capacity=len(frames))
    rows = []
    for track in dataset.tracks(video.id):
        boxes = [true_box(bbox) for bbox in track.bboxes]
        visible = [t for t, box in enumerate(boxes) if box is not None]
        if not visible:
            continue
        first = visible[0]
        stale = model.templates(encoded[first], boxes[first], ZERO)
        for t in visible[1:]:
            last, truth = boxes[t - 1], boxes[t]
            if last is None:
                continue
            fresh = model.templates(encoded[t - 1], last, ZERO)
            predicted = (last, siamese_box(model, encoded[t], stale, last), siamese_box(model, encoded[t], fresh, last))
            rows.append((t - first, *(float(box_iou(box, truth)[0, 0]) for box in predicted)))
    return rows


@torch.no_grad()
def steps(dataset: YouTubeVISDataset, checkpoints: list[str]) -> dict[str, np.ndarray]:
    """``{checkpoint: [S, 4] rows}`` (see :func:`video_steps`); each video is decoded once for all checkpoints."""
    models = {url: load_tracking_models(url, device="cpu")[:2] for url in checkpoints}
    rows = {url: [] for url in checkpoints}
    for video in dataset.videos:
        frames = [frame for _, frame in dataset.iter_frames(video.id, source="video")]
        for url, (detector, model) in models.items():
            rows[url] += video_steps(dataset, video, frames, detector, model)
    return {url: np.asarray(found, dtype=np.float64).reshape(-1, 4) for url, found in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a YouTube-VIS folder with annotations (e.g. from `tubelets synth`)")
    parser.add_argument("checkpoints", nargs="*", default=["builtin:tracker-small"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| checkpoint | frames since template | steps | IoU, no motion | IoU, stale template | IoU, fresh template |")
    print("|---|---|---|---|---|---|")
    for url, rows in steps(YouTubeVISDataset(args.dataset), args.checkpoints).items():
        for label, low, high in (("all", 1, np.inf), *BINS):
            chosen = rows[(rows[:, 0] >= low) & (rows[:, 0] <= high)]
            means = chosen[:, 1:].mean(0) if len(chosen) else np.full(3, np.nan)
            print(f"| {url} | {label} | {len(chosen)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


if __name__ == "__main__":
    main()
