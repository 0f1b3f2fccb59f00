"""What decoding costs and what reading ahead gains: ``iter_frames`` against bare ffmpeg, in one run.

For each frame size the script encodes a test video (ffmpeg's ``mandelbrot``
source: a zoom into a textured fractal, so every pixel moves every frame; H.264
at CRF 23, 30 frames/s, about 5 Mbit/s at 1280x720, as camera footage) and
measures, as the frames a second of the whole call (the probe included):

1. decoding alone: ffmpeg writing the rgb24 frames to /dev/null (the bare
   baseline, ratio 1.00), with the decoder's threads left to ffmpeg (``auto``:
   one per core, and more) and with ``-threads 1``; ``iter_frames`` with its
   reader thread (``read_ahead``, the default) and reading in the caller's
   thread (``read_ahead=False``); and the probe alone, part of each of them.
2. decoding for a caller that spends ``--consumer-ms`` a frame in a call that
   releases the GIL (``time.sleep``, as a detector waits on its GPU; the
   default, 6.7 ms, is a detector at 150 frames/s), with and without reading
   ahead. The baseline (1.00) is the caller alone (the same sleeps): the best
   that decoding during them can do; without reading ahead the two take turns.

Each figure is the best of ``--repeats`` runs (a shared machine slows a run,
never speeds it up); CPU seconds are this process's and ffmpeg's. Ratios are
wall time over the baseline's. Prints one markdown table::

    .venv/bin/python benchmarks/decode_bench.py [--sizes 256x192,640x360,1280x720] [--frames 150]
        [--consumer-ms 6.7] [--repeats 5] [--crf 23] [--work DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from tubelets.io.ffmpeg_binary import ffmpeg_binary
from tubelets.io.video import iter_frames, probe

SIZES = "256x192,640x360,1280x720"
DETECTOR_FPS = 150  # the GPU detector's rate that decoding must keep up with (issue 32)
FFMPEG = ("-hide_banner", "-nostdin", "-v", "error")


@dataclasses.dataclass(frozen=True)
class Cost:
    """Wall seconds, and CPU seconds of this process and of the child processes it waited for (ffmpeg)."""

    wall: float
    cpu: float


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best_of(repeats: int, run: Callable[[], object]) -> Cost:
    """The cost of the fastest of ``repeats`` calls of ``run``."""
    costs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), cpu_seconds()
        run()
        costs.append(Cost(time.perf_counter() - wall, cpu_seconds() - cpu))
    return min(costs, key=lambda cost: cost.wall)


@dataclasses.dataclass
class Row:
    """One line of the table: a size, what ran, on how many frames, its cost, and its baseline's."""

    size: str
    case: str
    frames: int
    cost: Cost
    baseline: Cost | None = None

    def cells(self) -> list[str]:
        ratio = f"{self.cost.wall / self.baseline.wall:.2f}" if self.baseline else ""
        return [self.size, self.case, str(self.frames), f"{self.cost.wall:.3f}", f"{self.cost.cpu:.3f}",
                f"{self.frames / self.cost.wall:.0f}", ratio]


HEADER = ["size", "case", "frames", "wall s", "CPU s", "frames/s", "ratio"]


# ---- the test video -----------------------------------------------------------------------------------------


def make_video(path: Path, size: str, frames: int, crf: int) -> Path:
    """An H.264 mp4 of ``frames`` frames of ffmpeg's zooming mandelbrot at ``size`` (WxH), 30 frames/s."""
    subprocess.run([ffmpeg_binary(), *FFMPEG, "-y", "-f", "lavfi", "-i", f"mandelbrot=size={size}:rate=30",
                    "-frames:v", str(frames), "-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    return path


def bitrate(path: Path, frames: int) -> float:
    """Mbit/s of the video at 30 frames/s."""
    return path.stat().st_size * 8 / (frames / 30) / 1e6


# ---- what is timed ------------------------------------------------------------------------------------------


def bare_decode(path: Path, threads: str) -> None:
    """ffmpeg alone: every frame decoded and converted to rgb24, written to /dev/null."""
    subprocess.run([ffmpeg_binary(), *FFMPEG, "-threads", threads, "-i", str(path), "-map", "0:v:0",
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-fps_mode", "passthrough", "-y", os.devnull], check=True)


def consume(path: Path, read_ahead: bool, seconds: float) -> int:
    """The frames ``iter_frames`` gives, each followed by ``seconds`` of sleep (none: 0); how many."""
    count = 0
    for _ in iter_frames(str(path), read_ahead=read_ahead):
        count += 1
        if seconds:
            time.sleep(seconds)
    return count


def sleep_only(frames: int, seconds: float) -> None:
    for _ in range(frames):
        time.sleep(seconds)


def size_rows(path: Path, size: str, frames: int, consumer_ms: float, repeats: int) -> list[Row]:
    """The table's rows of one video."""
    seconds = consumer_ms / 1000
    for read_ahead in (True, False):  # each side gives every frame
        assert consume(path, read_ahead, 0) == frames, f"{path}: not {frames} frames"
    bare = best_of(repeats, lambda: bare_decode(path, "auto"))
    alone = best_of(repeats, lambda: sleep_only(frames, seconds))
    return [
        Row(size, "ffmpeg -> /dev/null, decoder threads auto", frames, bare, bare),
        Row(size, "ffmpeg -> /dev/null, -threads 1", frames, best_of(repeats, lambda: bare_decode(path, "1")), bare),
        Row(size, "iter_frames, read ahead", frames, best_of(repeats, lambda: consume(path, True, 0)), bare),
        Row(size, "iter_frames, in the caller's thread", frames, best_of(repeats, lambda: consume(path, False, 0)),
            bare),
        Row(size, "probe alone (in each iter_frames row)", 1, best_of(repeats, lambda: probe(str(path)))),
        Row(size, f"caller alone: {consumer_ms:g} ms sleep a frame", frames, alone, alone),
        Row(size, "caller + iter_frames, read ahead", frames,
            best_of(repeats, lambda: consume(path, True, seconds)), alone),
        Row(size, "caller + iter_frames, in the caller's thread", frames,
            best_of(repeats, lambda: consume(path, False, seconds)), alone),
    ]


# ---- the run ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=SIZES, help=f"comma-separated WxH, even numbers (default {SIZES})")
    parser.add_argument("--frames", type=int, default=150, help="frames of each video (default 150)")
    parser.add_argument("--consumer-ms", type=float, default=round(1000 / DETECTOR_FPS, 1),
                        help=f"the caller's time a frame (default: a detector at {DETECTOR_FPS} frames/s)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each case; the fastest counts (default 5)")
    parser.add_argument("--crf", type=int, default=23, help="x264's CRF of the videos (default 23, x264's own)")
    parser.add_argument("--work", default=None, help="folder for the videos (default: a temporary one)")
    args = parser.parse_args(argv)
    args.sizes = [size for size in args.sizes.split(",") if size]
    for size in args.sizes:
        width, _, height = size.partition("x")
        if not (width.isdigit() and height.isdigit() and int(width) % 2 == 0 and int(height) % 2 == 0):
            parser.error(f"a size is WxH with even W and H, got {size!r}")
    if args.frames < 1 or args.repeats < 1 or args.consumer_ms <= 0:
        parser.error("--frames and --repeats must be positive, --consumer-ms above 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    rows, videos = [], []
    with tempfile.TemporaryDirectory(dir=args.work, prefix="decode-bench-") as work:
        for size in args.sizes:
            path = make_video(Path(work) / f"mandelbrot-{size}.mp4", size, args.frames, args.crf)
            videos.append(f"{size} {bitrate(path, args.frames):.1f} Mbit/s")
            rows += size_rows(path, size, args.frames, args.consumer_ms, args.repeats)
    print(f"{os.cpu_count()} cores; {args.frames} frames of H.264 CRF {args.crf} ({', '.join(videos)}); "
          f"best of {args.repeats}")
    print(table(rows))


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return "\n".join(lines + ["| " + " | ".join(row.cells()) + " |" for row in rows])


if __name__ == "__main__":
    main()
