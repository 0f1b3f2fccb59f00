"""How the cost of ``tubelets segment`` and ``evaluate`` grows with the number of videos, on the DirectRunner and Dask.

For each size (``--sizes 10,100,1000``) a bucket of short Shapes-VIS clips
(``--frames`` frames of ``--width`` x ``--height``, drawn by ``tubelets.synth``)
is segmented by ``tubelets segment`` (``--commands segment``), or scored by
``tubelets evaluate`` as a YouTube-VIS data set of those clips with their
ground truth (``--commands evaluate``), run as a subprocess, with the shipped
detector kept cheap (``detector.min_size``/``max_size`` at the frames' size)
and ``--tracker iou``, on

* ``direct``: the DirectRunner, multi-processing, ``--workers`` worker processes;
* ``dask``: Beam's Dask runner on a scheduler and ``--workers`` workers (1
  process, 1 thread each) started here as separate processes on 127.0.0.1
  (``dask scheduler``, ``dask worker``), stopped by their pids at the end.

Peak RSS is polled (psutil, every 0.2 s) for the launching process alone and for
each worker: a DirectRunner worker process, a Dask worker process tree (nanny
and worker), and the Dask scheduler, each with the programs it runs (ffmpeg).
A child that is still a copy of its parent (forked, not yet running its own
program: about to become ffmpeg) is left out: its RSS is its parent's pages
again, and counting it made a worker look twice its size whenever a poll fell
in that moment, more often the more videos a run decoded. ``--long`` adds one
``--long-frames``-frame video (the clips looped) on each engine: its peak memory
shows whether a video is streamed or held whole.

Usage: python benchmarks/scale_bench.py [--sizes 10,100,1000] [--engines direct,dask] [--commands segment,evaluate]
           [--long] [--work DIR] [--json results.json] [--set KEY=VALUE ...]
Prints one table: wall time, frames/s, peak RSS (MB), seconds per video, its
ratio to the smallest size's on the same engine (below 1: the fixed start-up
is spread over more videos), and the marginal seconds per video (the wall
time past the smallest size's, per video past it: a cost per video that grows
with the run shows here). Each engine first runs 2 videos, unreported, so the
first size does not pay the first imports alone.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional, Sequence

import numpy as np
import psutil
from process_memory import is_fork_copy, tree_rss
from shapes_vis import as_set_args

from tubelets.io.video_writer import write_mp4
from tubelets.synth import spec
from tubelets.synth.dataset import annotation_records, video_record, video_rng
from tubelets.synth.scene import SyntheticVideo, generate_video

BIN = os.path.dirname(sys.executable)
MB = 1024 * 1024


# ---- data -----------------------------------------------------------------------------------------------


def make_clips(folder: str, count: int, frames: int, width: int, height: int,
               seed: int) -> list[tuple[str, SyntheticVideo]]:
    """``count`` distinct Shapes-VIS clips of ``frames`` frames (:func:`fit`), as mp4s: ``(mp4 path, video)``
    each. Made once for both commands: ``segment`` buckets link the files, ``evaluate`` ones add the ground truth."""
    os.makedirs(folder, exist_ok=True)
    clips = []
    for index in range(count):
        video = fit(generate_video(video_rng(seed, index), width, height), frames)
        path = os.path.join(folder, f"clip_{index:03d}.mp4")
        write_mp4(path, video.frames, spec.FPS)
        clips.append((path, video))
    return clips


def fit(video: SyntheticVideo, frames: int) -> SyntheticVideo:
    """The video's first ``frames`` frames, looped from its start where it is shorter, with the instances seen
    in them (their masks looped with the frames) and the camera path."""
    order = np.arange(frames) % video.length
    instances = [dataclasses.replace(instance, masks=[instance.masks[t] for t in order])
                 for instance in video.instances if any(instance.masks[t] is not None for t in order)]
    return dataclasses.replace(video, frames=video.frames[order], instances=instances, camera=video.camera[order])


def make_bucket(folder: str, clips: list[tuple[str, SyntheticVideo]], videos: int) -> str:
    """``videos`` files (hard links to the clips' mp4s, in turn) in ``folder``; the glob that matches them."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for index in range(videos):
        link(clips[index % len(clips)][0], os.path.join(folder, f"video_{index:05d}.mp4"))
    return os.path.join(folder, "*.mp4")


def link(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)


def make_dataset_bucket(folder: str, clips: list[tuple[str, SyntheticVideo]], videos: int) -> str:
    """A YouTube-VIS data set of ``videos`` videos in ``folder``: the clips in turn (hard links), each with its
    ground truth under its own video and annotation ids; the folder."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "videos"))
    clip_annotations = [annotation_records(video, 0, 0) for _, video in clips]  # RLE-encoded once a clip
    records, annotations = [], []
    for index in range(videos):
        path, video = clips[index % len(clips)]
        name = f"video_{index:05d}"
        link(path, os.path.join(folder, "videos", f"{name}.mp4"))
        records.append(video_record(index + 1, name, video))
        annotations += [{**annotation, "id": len(annotations) + k + 1, "video_id": index + 1}
                        for k, annotation in enumerate(clip_annotations[index % len(clips)])]
    with open(os.path.join(folder, "instances.json"), "w") as handle:
        json.dump({"videos": records, "annotations": annotations,
                   "categories": [dict(category) for category in spec.CATEGORIES]}, handle)
    return folder


def make_long_video(path: str, frames: int, width: int, height: int, seed: int) -> str:
    """One ``frames``-frame video: Shapes-VIS videos one after another, looped."""
    pieces, total = [], 0
    index = 0
    while total < min(frames, 2000):  # 2000 distinct frames, then looped
        video = generate_video(video_rng(seed + 1, index), width, height)
        pieces.append(video.frames)
        total += video.length
        index += 1
    write_mp4(path, np.resize(np.concatenate(pieces), (frames, height, width, 3)), spec.FPS)
    return path


# ---- processes and their memory -------------------------------------------------------------------------


class PeakRss:
    """Polls, every ``every`` seconds: the launcher's own RSS, each of its child processes' trees
    (DirectRunner workers), and each tree of ``other_roots`` (Dask workers, scheduler)."""

    def __init__(self, launcher: int, other_roots: dict[str, int], every: float = 0.2):
        self.launcher, self.other_roots, self.every = launcher, other_roots, every
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _note(self, name: str, rss: int) -> None:
        self.peaks[name] = max(self.peaks.get(name, 0), rss)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                launcher = psutil.Process(self.launcher)
                self._note("launcher", launcher.memory_info().rss)
                for child in launcher.children():
                    if not is_fork_copy(child, launcher):
                        self._note(f"child {child.pid}", tree_rss(child.pid))
            except psutil.Error:
                pass
            for name, pid in self.other_roots.items():
                self._note(name, tree_rss(pid))
            self._stop.wait(self.every)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {seconds:.0f}s")
        time.sleep(0.2)


class DaskCluster:
    """``dask scheduler`` and ``workers`` x ``dask worker --nworkers 1 --nthreads 1``, as processes of their own."""

    def __init__(self, workers: int, env: dict, logs: str):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--dashboard-address", ":0"], env, logs)
        wait_for(self._scheduler_up, 60, "dask scheduler")
        for index in range(workers):
            self._start(f"worker {index + 1}", ["worker", self.address, "--nworkers", "1", "--nthreads", "1",
                                                "--no-dashboard", "--local-directory", os.path.join(logs, "dask")],
                        env, logs)
        self._wait_for_workers(workers)

    def _start(self, name: str, args: list[str], env: dict, logs: str) -> None:
        log = open(os.path.join(logs, f"dask-{name.replace(' ', '')}.log"), "w")
        self.processes[name] = subprocess.Popen([os.path.join(BIN, "dask"), *args], env=env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def _scheduler_up(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _wait_for_workers(self, workers: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)

    @property
    def roots(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def stop(self) -> None:
        """Workers first, then the scheduler: SIGTERM by pid, SIGKILL what is left after 10 s."""
        for name in sorted(self.processes, key=lambda name: name == "scheduler"):
            process = self.processes[name]
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ---- runs -----------------------------------------------------------------------------------------------


def tubelets_command(command: str, input_url: str, output: str, run_id: str, engine: str, workers: int,
                     frames_side: int, dask_address: Optional[str], overrides: Sequence[str] = ()) -> list[str]:
    """``tubelets segment|evaluate INPUT OUTPUT`` on ``engine``, the shipped detector at the frames' size, and
    ``overrides`` (``KEY=VALUE``) last."""
    command = [os.path.join(BIN, "tubelets"), command, input_url, output, "--run-id", run_id, "--tracker", "iou",
               "--set", "detector.device=cpu", "--set", f"detector.min_size={frames_side}",
               "--set", f"detector.max_size={frames_side}", "--progress-every", "0", *as_set_args(overrides)]
    if engine == "direct":
        return command + ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    return command + ["--runner", "dask", "--dask-address", dask_address]


def run_once(command: list[str], env: dict, log: str, other_roots: dict[str, int], timeout: float) -> dict:
    """Run ``command``; its wall time, exit code, summary line and peak RSS (MB) by process."""
    started = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        with PeakRss(process.pid, other_roots) as peaks:
            try:
                rc = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                rc = process.wait()
    wall = time.monotonic() - started
    text = open(log).read()
    summary = re.search(r"run \S+: (\d+) videos, (\d+) frames", text)
    children = sorted((peak for name, peak in peaks.peaks.items() if name.startswith("child ")), reverse=True)
    return {"rc": rc, "wall_s": wall, "videos": int(summary.group(1)) if summary else None,
            "frames": int(summary.group(2)) if summary else None,
            "launcher_mb": peaks.peaks.get("launcher", 0) / MB,
            "worker_mb": [peak / MB for peak in children if peak > 50 * MB]  # DirectRunner workers (not helpers)
            + [peaks.peaks.get(name, 0) / MB for name in other_roots if name.startswith("worker")],
            "scheduler_mb": peaks.peaks.get("scheduler", 0) / MB if "scheduler" in other_roots else None}


def table(rows: list[dict]) -> str:
    header = ("engine", "command", "videos", "frames", "wall s", "frames/s", "launcher MB", "workers MB", "sched MB",
              "s/video", "ratio", "marginal s/video")
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for row in rows:
        workers = " / ".join(f"{mb:.0f}" for mb in row["worker_mb"]) or "-"
        lines.append(" | ".join([
            row["engine"], row["command"], str(row["size"]), str(row["frames"]), f"{row['wall_s']:.1f}",
            f"{row['frames'] / row['wall_s']:.1f}" if row["frames"] else "-", f"{row['launcher_mb']:.0f}", workers,
            f"{row['scheduler_mb']:.0f}" if row["scheduler_mb"] is not None else "-",
            f"{row['wall_s'] / row['size']:.3f}" if row["size"] else "-",
            f"{row['ratio']:.2f}" if row.get("ratio") is not None else "-",
            f"{row['marginal']:.3f}" if row.get("marginal") is not None else "-",
        ]) + ("" if row["rc"] == 0 else f"  (exit {row['rc']})"))
    return "\n".join(lines)


def add_ratios(rows: list[dict]) -> None:
    """Each row's seconds per video against the smallest size's of its engine and command, and its marginal cost."""
    for key in dict.fromkeys((row["engine"], row["command"]) for row in rows):
        scaled = [row for row in rows if (row["engine"], row["command"]) == key and not row["long"] and row["rc"] == 0]
        if not scaled:
            continue
        base = min(scaled, key=lambda row: row["size"])
        for row in scaled:
            row["ratio"] = (row["wall_s"] / row["size"]) / (base["wall_s"] / base["size"])
            if row is not base:  # what each video past the smallest size cost: the fixed start-up left out
                row["marginal"] = (row["wall_s"] - base["wall_s"]) / (row["size"] - base["size"])


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000", help="videos per bucket, comma-separated")
    parser.add_argument("--engines", default="direct,dask", help="direct, dask or both")
    parser.add_argument("--commands", default="segment", help="segment, evaluate or both, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="DirectRunner worker processes; Dask workers")
    parser.add_argument("--frames", type=int, default=8, help="frames of each short video")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--clips", type=int, default=10, help="distinct clips the buckets' videos repeat")
    parser.add_argument("--seed", type=int, default=34)
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="no unreported 2-video run on each engine before the measured ones")
    parser.add_argument("--long", action="store_true", help="also one --long-frames-frame video on each engine")
    parser.add_argument("--long-frames", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1500, help="seconds one run may take before it is killed")
    parser.add_argument("--work", default=None, help="folder for the data, outputs and logs (default: a temporary one)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run, e.g. run.dask_wave_videos=0 (repeatable)")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="tubelets-scale-")
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread a worker, as proposals.torch_threads
    sizes = [int(size) for size in args.sizes.split(",") if size]
    engines = [engine for engine in args.engines.split(",") if engine]
    commands = [command for command in args.commands.split(",") if command]
    side = max(args.width, args.height)
    clips = make_clips(os.path.join(work, "clips"), args.clips, args.frames, args.width, args.height, args.seed)
    long_glob = make_long_video(os.path.join(work, "long", "long.mp4"), args.long_frames, args.width, args.height,
                                args.seed) if args.long else None
    print(f"work folder {work}; {psutil.cpu_count()} CPUs", file=sys.stderr)

    def bucket(command: str, size: int) -> str:
        folder = os.path.join(work, f"{command}-{size}")
        if command == "evaluate":
            return make_dataset_bucket(folder, clips, size)
        return make_bucket(folder, clips, size)

    rows = []
    for engine in engines:
        cluster = DaskCluster(args.workers, env, logs) if engine == "dask" else None
        try:
            roots = cluster.roots if cluster else {}
            runs = [(command, size) for command in commands for size in sizes]
            if args.warmup:  # first imports, a Dask worker's first task: paid once, not by the first size
                runs.insert(0, (commands[0], "warmup"))
            runs += [("segment", "long")] if long_glob else []
            for command, size in runs:
                run_id = f"{engine}-{command}-{size}"
                input_url = long_glob if size == "long" else bucket(command, 2 if size == "warmup" else size)
                line = tubelets_command(command, input_url, os.path.join(work, "out"), run_id, engine, args.workers,
                                        side, cluster.address if cluster else None, args.overrides)
                shutil.rmtree(os.path.join(work, "out", run_id), ignore_errors=True)
                result = run_once(line, env, os.path.join(logs, f"{run_id}.log"), roots, args.timeout)
                if size != "warmup":
                    rows.append({"engine": engine, "command": command, "size": 1 if size == "long" else size,
                                 "long": size == "long", **result})
                print(f"{run_id}: {result['wall_s']:.1f}s, exit {result['rc']}", file=sys.stderr, flush=True)
        finally:
            if cluster:
                cluster.stop()
    add_ratios(rows)
    if any(not row["long"] for row in rows):
        print(table([row for row in rows if not row["long"]]))
    if long_glob:
        print(f"one video of {args.long_frames} frames ({args.width}x{args.height}):")
        print(table([row for row in rows if row["long"]]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "rows": rows}, handle, indent=1)
    return 0 if all(row["rc"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
