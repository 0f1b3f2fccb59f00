"""What running each frame alone costs the proposal stage: batched forward passes vs. a pass a frame.

The pipeline's ``DetectorModelHandler`` runs every frame of a Beam batch through
the detector on its own (``detect_each``), because a batched pass makes a
frame's detections depend on its batch-mates. This times, in one process and
over the same frames (Shapes-VIS, the shipped detector, one torch thread as the
pipeline's workers use by default), the old way (``proposals.batch_size`` frames
a forward pass) against the new one, after a warm-up, best of ``--repeats`` runs taken in turns.

Usage: python benchmarks/investigations/detector_batching.py [--frames 48] [--batch 4] [--threads 1] [--repeats 3]
       [--device cpu] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tubelets.config import load_config
from tubelets.models.inference import detect_each, frames_to_tensors, model_device
from tubelets.models.loading import load_detector
from tubelets.synth import generate_video, video_rng


def sample_frames(count: int) -> list[np.ndarray]:
    """``count`` Shapes-VIS frames (256x192), from as many videos as needed."""
    frames, seed = [], 4321
    while len(frames) < count:
        frames += list(generate_video(video_rng(seed, 0)).frames)
        seed += 1
    return frames[:count]


def batched(model, frames: list[np.ndarray], batch: int) -> None:
    """The old handler: one forward pass a batch."""
    for start in range(0, len(frames), batch):
        model(frames_to_tensors(frames[start : start + batch], model_device(model)))


def best_seconds(runs: dict, repeats: int) -> dict:
    """The best wall time of each of ``runs`` (name -> callable), taking turns so that load from elsewhere hits both."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--batch", type=int, default=4, help="frames a batched forward pass (proposals.batch_size)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, info = load_detector(load_config(None, [f"detector.device={args.device}", *args.set]))
    frames = sample_frames(args.frames)
    with torch.inference_mode():
        detect_each(model, frames[: args.batch])  # warm-up
        batched(model, frames[: args.batch], args.batch)
        best = best_seconds({"old": lambda: batched(model, frames, args.batch),
                             "new": lambda: detect_each(model, frames)}, args.repeats)
    old, new = best["old"], best["new"]
    print(f"detector {info.preset} ({info.checkpoint_id}) on {args.device}, {args.threads} thread(s), "
          f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}")
    for label, seconds in ((f"old: {args.batch} frames a pass", old), ("new: a pass a frame", new)):
        print(f"{label:<24} {len(frames) / seconds:7.2f} frames/s")
    print(f"ratio new / old: {old / new:.3f} (above 1: the new way is faster)")


if __name__ == "__main__":
    main()
