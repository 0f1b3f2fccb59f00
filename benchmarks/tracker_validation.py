"""Compare trackers on large Shapes-VIS sets in minutes: proposals once per set, then every tracker on them.

The ablation (``benchmarks/ablation.py``) runs the whole pipeline once per
tracker, which is right for the committed table but slow for 100-video sets.
This script runs the same components outside Beam: the detector once per
video (frames decoded from the mp4s, as the pipeline does, through the pipeline's
model handler; the proposals are cached under ``--work``), then for each tracker
the pipeline's own tracking step (:func:`tubelets.models.video_tracking.track_video`:
class calibration, the tracker, the other classes), the VIS metrics, all with
the ``shapes-vis`` preset. Each video is decoded once for the detector and all
trackers; the ``s`` column is the time spent in the tracking step. It prints
AP..AR10 with the diagnosis of :mod:`tubelets.metrics.vis_diagnosis`
(AP with oracle scores and classes, missed and extra frames, the share of tracks split between
tubelets) and the paired bootstrap intervals of ``ablation_significance.py``::

    .venv/bin/python benchmarks/tracker_validation.py [--work /tmp/tubelets-validation] \\
        [--seed 90] [--hard-seed 91] [--videos 100] [--trackers iou,instance,pixel,ipdt] [--threads 1] \\
        [--set KEY=VALUE ...] [--results-dir DIR]

About 20 minutes on 2 cores for the default 2 x 100 videos. ``--seed`` and
``--hard-seed`` take comma-separated lists (``--seed 90,92``); the intervals
are also computed over the pooled videos of each difficulty with several sets
(``default, 3 sets``) and, with sets of both difficulties, of all of them (``all N
sets``), and the table gives each pool's AP (``default, 3 sets, pooled``). ``--set`` overrides go to every tracker (e.g.
``tracker.ipdt.checkpoint=...``); ``--set proposals.detect_every=N`` keeps the
cached proposals of every N-th frame only, as the pipeline would detect them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, ContextManager, Iterator, NamedTuple

import torch
from ablation import separator
from ablation_significance import HEADER as SIGNIFICANCE_HEADER
from ablation_significance import rows as significance_rows
from shapes_vis import PRESET, synthesize

from tubelets.config import load_config
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.metrics.vis import evaluate
from tubelets.metrics.vis_diagnosis import diagnose
from tubelets.models.trackers import build_tracker
from tubelets.models.tubelet_scoring import scorer_from_config
from tubelets.models.video_tracking import track_video
from tubelets.pipelines.segment import detector_handler
from tubelets.records import VideoMeta
from tubelets.transforms.proposals import video_detections
from tubelets.transforms.tracking import assemble_video
from tubelets.tubelet_rows import tubelets_to_results

HEADER = "| set | tracker | AP | AP50 | AP75 | AR1 | AR10 | AP, oracle scores + classes | missed | extra | split | s |"


@dataclasses.dataclass
class SetRun:
    """The trackers' results on one set, the time each spent tracking, and the detector's proposals."""

    results: dict[str, list]  # {tracker: YouTube-VIS results}
    seconds: dict[str, float]  # {tracker: seconds tracking}
    proposals: dict[int, list]  # {video id: [FrameDetections] per frame}


def run_set(dataset: YouTubeVISDataset, config: dict, folder: Path, trackers: list[str]) -> SetRun:
    """Every tracker over the set.

    Each video is decoded once for the detector and every tracker; the
    detector's proposals are cached per detector checkpoint under ``folder``.
    """
    detector = detector_handler(config).load_model()
    every, per_forward = config["proposals"]["detect_every"], config["proposals"]["frames_per_forward"]
    # As the pipeline: a forward pass a chunk of the frames it detects ("-each": a frame a pass, every frame).
    chunking = "each" if (every, per_forward) == (1, 1) else f"every{every}-chunks{per_forward}"
    cache = folder / f"proposals-{detector.info.checkpoint_id}-{chunking}.pkl"
    proposals = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    built = {name: build_tracker(name, config["tracker"]) for name in trackers}
    scorer = scorer_from_config(config["scoring"])
    results, seconds = {name: [] for name in trackers}, dict.fromkeys(trackers, 0.0)
    for video in dataset.videos:
        frames = [frame for _, frame in dataset.iter_frames(video.id, source="video")]
        if video.id not in proposals:
            proposals[video.id] = video_detections(detector, frames, every, per_forward)
        meta = VideoMeta(video.name, video.width, video.height, video.length, video_id=video.id)
        # The proposals of the frames the pipeline would detect, assembled as its GroupProposals does, then
        # tracked as its TrackVideo does (track_video does not change them, so every tracker gets the same).
        (assembled,) = assemble_video((video.name, {"meta": [meta], "frames": proposals[video.id]}), every)
        for name, tracker in built.items():
            started = time.monotonic()
            tracked = track_video(assembled, frames, tracker, config["calibration"], scorer)
            results[name] += tubelets_to_results(tracked.tubelets, meta)
            seconds[name] += time.monotonic() - started
    if not cache.exists():
        cache.write_bytes(pickle.dumps(proposals))
    return SetRun(results, seconds, proposals)


def table_row(set_name: str, tracker: str, gt: dict, results: list, seconds: float | None) -> str:
    """One tracker's row; ``seconds`` ``None`` (a pool's row) leaves the time blank."""
    stats, diagnosis = evaluate(gt, results).stats, diagnose(gt, results)
    cells = [stats[k] for k in ("AP", "AP50", "AP75", "AR1", "AR10")]
    cells += [diagnosis.ap["oracle both"]["AP"], diagnosis.frames.missed, diagnosis.frames.extra,
              diagnosis.frames.tracks_split]
    time = "" if seconds is None else f"{seconds:.0f}"
    return f"| {set_name} | {tracker} | " + " | ".join(f"{100 * v:.1f}" for v in cells) + f" | {time} |"


def write_results(folder: Path, results: dict[str, list]) -> None:
    """``folder/TRACKER.json``: each tracker's YouTube-VIS results."""
    folder.mkdir(parents=True, exist_ok=True)
    for tracker, entries in results.items():
        (folder / f"{tracker}.json").write_text(json.dumps(entries))


def seed_list(text: str) -> list[int]:
    """``"90,92"`` -> ``[90, 92]``."""
    return [int(item) for item in text.split(",") if item.strip()]


def pool_sets(scored: list[tuple[dict, dict[str, list]]]) -> tuple[dict, dict[str, list]]:
    """Several sets' ground truth and ``{tracker: results}`` as one set (video and annotation ids renumbered).

    The paired bootstrap then resamples the videos of all of them: one
    interval for the trackers' difference over every video measured.
    """
    categories = scored[0][0]["categories"]
    pooled_gt = {**scored[0][0], "videos": [], "annotations": []}
    pooled_results: dict[str, list] = {}
    for gt, results in scored:
        if gt["categories"] != categories:
            raise SystemExit("the sets to pool have different categories")
        renumber = {video["id"]: len(pooled_gt["videos"]) + n + 1 for n, video in enumerate(gt["videos"])}
        pooled_gt["videos"] += [{**video, "id": renumber[video["id"]]} for video in gt["videos"]]
        first = len(pooled_gt["annotations"]) + 1
        pooled_gt["annotations"] += [{**a, "id": first + n, "video_id": renumber[a["video_id"]]}
                                     for n, a in enumerate(gt["annotations"])]
        for tracker, entries in results.items():
            pooled_results.setdefault(tracker, []).extend({**r, "video_id": renumber[r["video_id"]]} for r in entries)
    return pooled_gt, pooled_results


def add_set_arguments(parser: argparse.ArgumentParser, seeds: list[int], hard_seeds: list[int], videos: int,
                      trackers: str) -> None:
    """The options that pick the sets (generated once under ``--work``), the trackers and the config."""
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tubelets-validation"))
    parser.add_argument("--seed", type=seed_list, default=seeds, help="seeds of the default-difficulty sets (90,92)")
    parser.add_argument("--hard-seed", type=seed_list, default=hard_seeds, help="seeds of the --hard sets")
    parser.add_argument("--videos", type=int, default=videos, help="videos per set")
    parser.add_argument("--trackers", default=trackers)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the detector's and the trackers')")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


class ValidationSet(NamedTuple):
    name: str  # "seed 90", "seed 91 hard": its rows in the tables
    folder: Path
    hard: bool  # generated with --hard


def validation_sets(args: argparse.Namespace) -> Iterator[ValidationSet]:
    """Each set of ``args``, the default ones first, each generated unless it is there."""
    for seed, hard in [(seed, False) for seed in args.seed] + [(seed, True) for seed in args.hard_seed]:
        folder = synthesize(Path(args.work) / f"shapes-{seed}-{args.videos}{'-hard' if hard else ''}", args.videos,
                            seed, ["--hard"] if hard else [])
        yield ValidationSet(f"seed {seed}{' hard' if hard else ''}", folder, hard)


def pools(scored: list[tuple[bool, dict, dict[str, list]]]) -> list[tuple[str, dict, dict[str, list]]]:
    """``(name, ground truth, {tracker: results})`` of the pooled videos of each difficulty with several sets,
    and of all sets.

    ``scored``: ``(hard, ground truth, {tracker: results})`` per set. A
    difficulty's own pool is what a per-difficulty claim rests on (the issue's
    60 videos per difficulty); the pool of all sets is added when it is not
    the same as one of them (the sets are of both difficulties).
    """
    found = []
    for hard, name in [(False, "default"), (True, "hard")]:
        sets = [(gt, results) for is_hard, gt, results in scored if is_hard == hard]
        if len(sets) > 1:
            found.append((f"{name}, {len(sets)} sets", *pool_sets(sets)))
    if len(scored) > 2 and len({hard for hard, _, _ in scored}) == 2:
        found.append((f"all {len(scored)} sets", *pool_sets([s[1:] for s in scored])))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_arguments(parser, [90], [91], 100, "iou,instance,pixel,ipdt")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--results-dir", type=Path, help="also write each set's results as DIR/SET/TRACKER.json "
                        "(for ablation_significance.py --gt SET/instances.json --results TRACKER=...)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    compare_sets(args, load_config(PRESET, args.overrides), args.results_dir)


def compare_sets(args: argparse.Namespace, config: dict, results_dir: Path | None = None,
                 around_set: Callable[[str, YouTubeVISDataset], ContextManager] | None = None) -> None:
    """Run the trackers over each set of ``args`` and print the table and the paired bootstrap rows.

    ``results_dir``: also write each set's results there (:func:`write_results`).
    ``around_set(set name, dataset)``: a context each set's tracking runs in (what a caller sets up
    and reports per set; ``tracker_oracles.py``).
    """
    report = [HEADER, separator(HEADER)]
    significance, scored = [], []
    for set_name, folder, hard in validation_sets(args):
        dataset, gt = YouTubeVISDataset(str(folder)), json.loads((folder / "instances.json").read_text())
        with around_set(set_name, dataset) if around_set else contextlib.nullcontext():
            run = run_set(dataset, config, folder, args.trackers.split(","))
        results = run.results
        if results_dir:
            write_results(results_dir / folder.name, results)
        for tracker in results:
            report.append(table_row(set_name, tracker, gt, results[tracker], run.seconds[tracker]))
            print(report[-1], file=sys.stderr, flush=True)
        significance += significance_rows(set_name, gt, results, args.samples)
        scored.append((hard, gt, results))
    for pool_name, gt, results in pools(scored):  # AP over a pool's videos, then its intervals
        report += [table_row(f"{pool_name}, pooled", tracker, gt, results[tracker], None) for tracker in results]
        significance += significance_rows(pool_name, gt, results, args.samples)
    print("\n".join(report))
    print()
    print("\n".join([SIGNIFICANCE_HEADER, separator(SIGNIFICANCE_HEADER), *significance]))

if __name__ == "__main__":
    main()
