"""IPDT tracking cost: time per frame for 1, 4 and 16 instances against the proposal stage, and peak memory.

1. *timing*: one Shapes-VIS video; the detector's time per frame (``detect``,
   a pass a chunk of ``proposals.frames_per_forward`` frames at
   ``detector.precision``, as the pipeline runs it), then the
   ``ipdt`` tracker's time per frame following N instances (N proposals in
   frame 0, the confidence floor off so all N stay followed to the end).
2. *memory*: a 600-frame video (Shapes-VIS videos concatenated, written as an
   mp4 and read back through the pipeline's lazy ``VideoFrames``), tracked
   from every frame's ground-truth masks as proposals (prepared beforehand, in
   this process); each measurement runs in a fresh process that loads the
   models and proposals, then tracks, and reports its peak resident memory
   (``ru_maxrss``) before and after tracking and the Python-heap peak
   (``tracemalloc``) of the tracking call (after a warm-up on the first three
   frames), once with the configured ``feature_window`` and once with a
   window holding every frame.

With ``--device cuda`` the detector and the tracker run on the GPU: the times
wait for the GPU's queue to drain (``torch.cuda.synchronize``), and the memory
part adds the tracking call's peak GPU allocation (``max_memory_allocated``).

Usage: python benchmarks/tracker_bench.py [--threads 2] [--device cpu|cuda] [--frames 600] [--no-memory]
       [--size 1280x720] [--set KEY=VALUE ...]
(the ``shapes-vis`` preset, as for all Shapes-VIS data; ``--set`` overrides it, e.g.
``tracker.ipdt.checkpoint=/tmp/t.pt``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import torch
from shapes_vis import PRESET, as_set_args

from tubelets import masks
from tubelets.config import load_config
from tubelets.io.frames import VideoFrames
from tubelets.io.video_writer import write_mp4
from tubelets.models.inference import detect, model_device
from tubelets.models.trackers import build_tracker
from tubelets.records import FrameDetections, VideoMeta, VideoProposals
from tubelets.synth import generate_video, spec, video_rng


def grid_proposals(length: int, count: int, height: int, width: int) -> VideoProposals:
    """``count`` 24-pixel square proposals on a grid in frame 0, nothing later."""
    columns = int(np.ceil(np.sqrt(count)))
    xs = np.linspace(4, width - 28, columns).astype(int)
    ys = np.linspace(4, height - 28, columns).astype(int)
    rles, boxes = [], []
    for index in range(count):
        x, y = int(xs[index % columns]), int(ys[index // columns])
        mask = np.zeros((height, width), np.uint8)
        mask[y : y + 24, x : x + 24] = 1
        rles.append(masks.encode(mask))
        boxes.append([x, y, x + 24, y + 24])
    first = FrameDetections(0, np.asarray(boxes, np.float32), np.full(count, 0.9, np.float32),
                            np.ones(count, np.int64), rles)
    frames = [first] + [FrameDetections.empty(t) for t in range(1, length)]
    return VideoProposals(VideoMeta("bench", width, height, length), frames)


def _synchronize() -> None:
    """Wait for queued GPU work, so a wall-clock time covers it (a no-op without CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timing(cfg: dict, seed: int, size: tuple[int, int] = (256, 192)) -> dict:
    """The timing part on a ``--hard`` Shapes-VIS video of ``size`` (width, height) frames."""
    video = generate_video(video_rng(seed, 0), width=size[0], height=size[1], hard=True)
    frames = list(video.frames)
    # Every instance followed to the end: no confidence floor, no stop for lost or unconfirmed steps.
    followed = {"min_confidence": 0.0, "max_lost": 10**6, "max_unconfirmed": None}
    tracker_cfg = {**cfg["tracker"], "ipdt": {**cfg["tracker"]["ipdt"], **followed}}
    tracker = build_tracker("ipdt", tracker_cfg)
    # As the pipeline: a forward pass a chunk of proposals.frames_per_forward frames, the backbone at
    # detector.precision.
    chunk, precision = int(cfg["proposals"]["frames_per_forward"]), cfg["detector"]["precision"]
    detect(tracker.detector, frames[:chunk], precision)  # warm-up
    _synchronize()
    started = time.perf_counter()
    for start in range(0, len(frames), chunk):
        detect(tracker.detector, frames[start : start + chunk], precision)
    _synchronize()
    result = {"frames": len(frames), "size": f"{video.width}x{video.height}",
              "proposal_ms_per_frame": 1000 * (time.perf_counter() - started) / len(frames)}
    for count in (1, 4, 16):
        proposals = grid_proposals(len(frames), count, video.height, video.width)
        tracker.track(grid_proposals(3, count, video.height, video.width), frames[:3])  # warm-up
        _synchronize()
        started = time.perf_counter()
        tracker.track(proposals, frames)
        _synchronize()
        result[f"track_ms_per_frame_{count}"] = 1000 * (time.perf_counter() - started) / len(frames)
    return result


def long_video(folder: str, frames: int, seed: int) -> tuple[VideoMeta, VideoProposals]:
    """A ``frames``-long mp4 of concatenated Shapes-VIS videos and its ground-truth masks as proposals."""
    pieces, detections, index = [], [], 0
    while sum(len(p) for p in pieces) < frames:
        video = generate_video(video_rng(seed, index))
        index += 1
        offset = sum(len(p) for p in pieces)
        for t in range(video.length):
            visible = [(i, i.masks[t]) for i in video.instances if i.masks[t] is not None]
            rles = [masks.encode(m.astype(np.uint8)) for _, m in visible]
            boxes = [[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in map(masks.bbox, rles)]
            detections.append(FrameDetections(offset + t, np.asarray(boxes, np.float32).reshape(-1, 4),
                                              np.full(len(rles), 0.9, np.float32),
                                              np.asarray([i.category_id for i, _ in visible], np.int64), rles))
        pieces.append(video.frames)
    stacked = np.concatenate(pieces)[:frames]
    url = os.path.join(folder, "long.mp4")
    write_mp4(url, stacked, spec.FPS)
    meta = VideoMeta("long", stacked.shape[2], stacked.shape[1], frames, url=url)
    return meta, VideoProposals(meta, detections[:frames])


def memory_child(cfg: dict, folder: str, window: int) -> dict:
    """Runs in its own process: track the long video prepared in ``folder``; peak memory of this process."""
    with open(os.path.join(folder, "proposals.pkl"), "rb") as handle:
        proposals = pickle.load(handle)
    tracker_cfg = {**cfg["tracker"], "ipdt": {**cfg["tracker"]["ipdt"], "feature_window": window}}
    tracker = build_tracker("ipdt", tracker_cfg)
    # A warm-up on the first frames, so the peaks below are the tracking's, not the libraries' first load.
    warm_up = VideoProposals(proposals.meta, proposals.frames[:3])
    tracker.track(warm_up, VideoFrames(proposals.meta))
    resident = _rss_mb()
    peak_reset = _reset_peak_rss()
    on_gpu = model_device(tracker.detector).type == "cuda"
    if on_gpu:
        gpu_before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    started = time.perf_counter()
    tubelets = tracker.track(proposals, VideoFrames(proposals.meta))
    _synchronize()
    seconds = time.perf_counter() - started
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result = {"frames": proposals.meta.length, "feature_window": window, "tubelets": len(tubelets),
              "seconds": seconds, "rss_mb_before_tracking": resident, "peak_rss_mb_while_tracking": _peak_rss_mb(),
              "peak_is_of_tracking_alone": peak_reset, "python_heap_peak_mb": heap_peak / 2**20}
    if on_gpu:
        result["gpu_mb_before_tracking"] = gpu_before / 2**20
        result["gpu_peak_mb_while_tracking"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _rss_mb() -> float:
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: ``clear_refs`` 5), so the peak read later is the tracking's."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frame_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1280x720, got {text!r}") from None
    return width, height


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (detector and tracker)")
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--no-memory", action="store_true", help="the timing part only")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--size", type=frame_size, default=(256, 192), metavar="WxH",
                        help="frame size of the timing video (the per-instance masks are full frames)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)  # "FOLDER:WINDOW"
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(PRESET, [*args.overrides, f"tracker.ipdt.device={args.device}"])
    if args.memory_child is not None:
        folder, window = args.memory_child.rsplit(":", 1)
        print(json.dumps(memory_child(cfg, folder, int(window))))
        return
    print(json.dumps({"timing": {"device": args.device, **timing(cfg, args.seed, args.size)}}), flush=True)
    if args.no_memory:
        return
    with tempfile.TemporaryDirectory() as folder:
        _, proposals = long_video(folder, args.frames, args.seed)
        with open(os.path.join(folder, "proposals.pkl"), "wb") as handle:
            pickle.dump(proposals, handle)
        for window in (cfg["tracker"]["ipdt"]["feature_window"], args.frames):
            command = [sys.executable, __file__, "--memory-child", f"{folder}:{window}", "--threads", str(args.threads),
                       "--device", args.device, *as_set_args(args.overrides)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            print(json.dumps({"memory": json.loads(out.strip().splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
