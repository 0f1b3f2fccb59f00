"""Time ``tubelets compare`` on two runs of 2,000 videos, and show that mask pixels do not enter it.

Builds two complete runs in a temporary OUTPUT as ``evaluate`` leaves them: a manifest
with the data set's digest, one ``video_matches`` Parquet file per video and the
``metrics`` table. The baseline's predictions are noisy copies of a random ground
truth; the candidate's miss more tracks. Then it times ``tubelets compare``
(``--samples`` resamples, in a process of its own: wall time, reading included, and
peak resident memory) and measures the matches' size on disk.

Then it shows that mask pixels do not enter the comparison: the same videos at
``--pixel-size`` and at twice the height and width (4x the pixels), compared in turn.
The protocol's work does depend on the area ranges that hold ground truth (an object
grown past 128**2 pixels is scored as medium too), so the pixel pair is small enough
for every object to stay small at both sizes; the timed runs' frames hold all ranges.

Generating and matching masks is far slower than comparing, so ``--unique-videos``
videos are generated and their matches copied under new video ids up to ``--videos``;
the comparison caches nothing across videos, so the copies cost what new videos would.

    python benchmarks/compare_bench.py --videos 2000 --samples 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import subprocess
import sys
import tempfile
import time

from tubelets import runs, tables
from tubelets.compare import compare_runs, load_matches, moved_videos
from tubelets.metrics.vis import accumulate, match_videos
from tubelets.metrics.vis_store import matches_to_row
from tubelets.synth.predictions import noisy_predictions, random_gt
from tubelets.transforms.evaluation import metric_rows

RUNS = {"baseline": dict(miss_rate=0.1), "candidate": dict(miss_rate=0.2)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--unique-videos", type=int, default=100)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--tracks", type=int, default=5, help="ground-truth tracks per video")
    parser.add_argument("--height", type=int, default=360, help="frames of the timed runs: objects of every area range")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--pixel-size", type=int, nargs=2, default=(48, 64), metavar=("H", "W"),
                        help="frames of the pixel comparison, against 2H x 2W (every object small in both)")
    parser.add_argument("--categories", type=int, default=40)
    parser.add_argument("--false-positives", type=int, nargs=2, default=(11, 15), metavar=("MIN", "MAX"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--scale-samples", type=int, default=100, help="resamples of the frame-size comparison")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each frame size, interleaved")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def matched_runs(args, height: int, width: int) -> tuple[dict, tuple, float]:
    """``({run: matches of the unique videos}, category ids, seconds matching took)`` at ``height`` x ``width``."""
    gt = random_gt(args.seed, videos=args.unique_videos, frames=(args.frames, args.frames),
                   sizes=((height, width),), categories=args.categories,
                   empty_categories=0, tracks=(args.tracks, args.tracks), crowd_rate=0.02, all_null_rate=0.0)
    results = {run: noisy_predictions(gt, args.seed + index, false_positives=tuple(args.false_positives),
                                      skip_video_rate=0.0, **knobs)
               for index, (run, knobs) in enumerate(RUNS.items())}
    start = time.perf_counter()
    matched = {run: match_videos(gt, found) for run, found in results.items()}
    seconds = time.perf_counter() - start
    return {run: matches for run, (matches, _) in matched.items()}, matched["baseline"][1], seconds


def write_run(output: str, run_id: str, unique: list, copies: int, category_ids: tuple) -> None:
    """One complete run of ``copies`` x the unique videos, each video's matches in a file of its own."""
    runs.claim_run(output, run_id, {"command": "evaluate", "config": {"run": {"task": "vis"}}})
    schema = tables.with_provenance(tables.VIDEO_MATCHES, run_id)
    folder = tables.table_folder(output, run_id, "video_matches")
    everyone = [dataclasses.replace(m, video_id=copy * 1_000_000 + m.video_id)
                for copy in range(copies) for m in unique]
    for m in everyone:
        row = {**matches_to_row(m, f"video-{m.video_id}"), "run_id": run_id}
        tables.write_parquet(tables.to_arrow([row], schema), f"{folder}/video-{m.video_id}.parquet")
    names = {c: f"class{c}" for c in category_ids}
    rows = [{**row, "run_id": run_id} for row in metric_rows(accumulate(everyone, category_ids), "bench", "-", names)]
    tables.write_rows(rows, output, run_id, "metrics")
    runs.update_manifest(output, run_id, status=runs.COMPLETE, dataset_digest="bench")


def folder_bytes(path: pathlib.Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


# The command line in a fresh process, which prints its peak resident memory as it ends: VmHWM, in KiB, is the
# high-water mark of this program's memory alone (getrusage's ru_maxrss would include the forking parent's).
PEAK_RSS = ("import sys\nfrom tubelets.cli import main\nstatus = main(sys.argv[1:])\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')), file=sys.stderr)\n"
            "sys.exit(status)")


def run_command(arguments: list[str]) -> tuple[float, float]:
    """``(wall seconds, peak RSS in MiB)`` of ``tubelets ARGUMENTS`` in a process of its own (Linux)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, *arguments], capture_output=True, text=True)
    return time.perf_counter() - start, int(done.stderr.strip().splitlines()[-1]) / 1024


def build(args, height: int, width: int, output: str) -> dict:
    """Both runs at ``height`` x ``width`` under ``output``; what it took and what they hold."""
    unique, category_ids, match_seconds = matched_runs(args, height, width)
    copies = -(-args.videos // args.unique_videos)
    for run, matches in unique.items():
        write_run(output, run, matches, copies, category_ids)
    areas = sum((m.gt_valid > 0).sum(axis=0) for m in unique["candidate"])
    return {"size": (height, width), "output": output, "videos": copies * args.unique_videos, "areas": areas,
            "match_seconds": match_seconds * copies,
            "bytes": folder_bytes(pathlib.Path(output) / "candidate" / "video_matches"),
            "predictions": sum(m.det_score.size for m in unique["candidate"]) * copies}


def describe(built: dict, args) -> None:
    (height, width), size = built["size"], built["bytes"]
    print(f"{built['videos']} videos of {args.frames} frames at {height}x{width}, {built['predictions']} kept "
          f"predictions in the candidate, {args.categories} categories; (video, category) pairs with ground truth "
          f"in the unique videos, all/small/medium/large: {'/'.join(map(str, built['areas']))}")
    print(f"  matching both runs (evaluate's per-video step, reads masks): {built['match_seconds']:.1f} s "
          f"(the unique videos' time x copies)")
    print(f"  stored matches of one run: {size / 2**20:.2f} MiB, {size / built['videos'] / 1024:.1f} KiB a video")


def time_command(args, output: str) -> None:
    """``tubelets compare`` with ``--samples`` resamples in a process of its own, and where its time goes."""
    seconds, peak = run_command(["compare", output, "baseline", "candidate", "--samples", str(args.samples),
                                 "--format", "json"])
    _, idle = run_command(["compare", output, "baseline", "baseline"])  # refused at once: the imports' memory
    start = time.perf_counter()
    (baseline, names), (candidate, _) = load_matches(output, "baseline"), load_matches(output, "candidate")
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    moved_videos(baseline, candidate, names, 10)
    video_seconds = time.perf_counter() - start
    print(f"tubelets compare, {args.samples} resamples: {seconds:.1f} s wall, peak RSS {peak:.0f} MiB "
          f"({idle:.0f} MiB for the interpreter and imports alone)")
    print(f"  of which reading both runs' matches {load_seconds:.1f} s, per-video AP of both runs "
          f"{video_seconds:.1f} s, the rest the bootstrap ({args.samples} x 2 accumulations)")


def time_sizes(args, built: list[dict]) -> None:
    """The same comparison at each frame size, interleaved ``--repeats`` times (the best of each is printed)."""
    best = [math.inf] * len(built)
    for _ in range(args.repeats):
        for index, each in enumerate(built):
            start = time.perf_counter()
            compare_runs(each["output"], "baseline", "candidate", samples=args.scale_samples)
            best[index] = min(best[index], time.perf_counter() - start)
    for seconds, each in zip(best, built):
        print(f"compare at {each['size'][0]}x{each['size'][1]}, {args.scale_samples} resamples: {seconds:.1f} s "
              f"(best of {args.repeats})")


def main(argv=None) -> None:
    args = parse_args(argv)
    height, width = args.pixel_size
    with tempfile.TemporaryDirectory(prefix="tubelets-compare-bench-") as root:
        timed = build(args, args.height, args.width, f"{root}/timed")
        describe(timed, args)
        time_command(args, timed["output"])
        pair = [build(args, height * scale, width * scale, f"{root}/x{scale}") for scale in (1, 2)]
        for each in pair:
            describe(each, args)
        time_sizes(args, pair)


if __name__ == "__main__":
    main()
