"""Domain adaptation of the detector: train on source, adapt on unlabelled shifted footage, test on labelled shifted.

Generates four Shapes-VIS sets (``tubelets synth``, fresh seeds ``--seed`` .. ``--seed + 3``): a labelled
source-domain train set, a shifted-domain train set (its videos the unlabelled target; its labels only for
the upper bound), a shifted test set and a source test set. Then, for equal step budgets from the shipped
``builtin:detector-small`` (trained on source-domain data)::

    none           the shipped detector as it is
    source-ft      tubelets adapt detector SOURCE OUT --target SHIFTED   with adapt_detector.domain_weight=0
                   (the same fine-tune on source frames, no domain loss: what DANN adds is the difference)
    dann           tubelets adapt detector SOURCE OUT --target SHIFTED   (DANN)
    target-labels  tubelets train detector SHIFTED OUT  init_from the shipped detector, the same batch, lr
                   and schedule (the upper bound: the labels adaptation does without)

and scores each on the shifted test set: per-frame mask AP (``tubelets evaluate-detector``) and video AP
(``tubelets evaluate --tracker iou --set scoring.checkpoint=null``: the shipped tracker heads and scorer
are tied to the shipped detector, so every row tracks with the iou tracker and the mean-score ranking).
The shipped detector is scored on the source test set too, so the gap the shift opens shows. Prints one
markdown table::

    .venv/bin/python benchmarks/adaptation.py [--work /tmp/tubelets-adapt] [--videos 20] [--train-videos 100]
        [--steps 500] [--lr 0.00005] [--set KEY=VALUE ...]

(docs/adaptation.md records the runs and their commands.)

Everything already under ``--work`` is read, not rerun (an interrupted training resumes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from shapes_vis import PRESET, TUBELETS, as_set_args, runner_flags, synthesize

from tubelets.tables import read_table

SHIPPED = "builtin:detector-small"
# What every trained row shares: one fine-tune schedule (adapt_detector's defaults, given to train_detector too).
BATCH, WARMUP = 2, 20
SETS = {  # name: (seed offset, domain)
    "source-train": (0, "source"),
    "shifted-train": (1, "shifted"),
    "shifted-test": (2, "shifted"),
    "source-test": (3, "source"),
}
ROWS = {
    "none": "none (the shipped detector-small)",
    "source-ft": "fine-tune on source only (DANN without its domain loss)",
    "dann": "DANN: source labels + unlabelled shifted videos",
    "target-labels": "fine-tune on shifted labels (upper bound)",
}


def make_sets(work: Path, videos: int, train_videos: int, seed: int, size: list[str]) -> dict[str, Path]:
    """The four sets under ``work/data``: ``train_videos`` videos in each train set, ``videos`` in each test set."""
    return {name: synthesize(work / "data" / name, train_videos if name.endswith("-train") else videos,
                             seed + offset, ["--domain", domain, *size])
            for name, (offset, domain) in SETS.items()}


def train(work: Path, row: str, sets: dict[str, Path], steps: int, lr: float,
          overrides: list[str]) -> tuple[str, float]:
    """The row's detector checkpoint (trained unless done) and its training's wall time in seconds."""
    if row == "none":
        return SHIPPED, 0.0
    out = work / "detectors" / f"{row}.pt"
    common = ["--steps", str(steps), "--threads", "1", "--no-progress", "--resume", *as_set_args(overrides)]
    if row == "target-labels":
        command = ["train", "detector", str(sets["shifted-train"]), str(out), *common, *as_set_args([
            f"train_detector.init_from={SHIPPED}", f"train_detector.batch_size={BATCH}", f"train_detector.lr={lr}",
            f"train_detector.warmup_steps={WARMUP}", "train_detector.min_lr_ratio=0.05",
            f"train_detector.checkpoint_every={max(1, steps // 4)}"])]
    else:
        weight = ["adapt_detector.domain_weight=0"] if row == "source-ft" else []
        command = ["adapt", "detector", str(sets["source-train"]), str(out), "--target", str(sets["shifted-train"]),
                   *common, *as_set_args([f"adapt_detector.init_from={SHIPPED}", f"adapt_detector.batch_size={BATCH}",
                                          f"adapt_detector.target_batch_size={BATCH}", f"adapt_detector.lr={lr}",
                                          f"adapt_detector.warmup_steps={WARMUP}",
                                          f"adapt_detector.checkpoint_every={max(1, steps // 4)}", *weight])]
    seconds = out.with_suffix(".seconds")  # written when the training is done: its wall time
    if not seconds.exists():
        started = time.monotonic()
        subprocess.run([*TUBELETS, *command], check=True)
        seconds.write_text(f"{time.monotonic() - started:.1f}")
    return str(out), float(seconds.read_text())


def frame_ap(work: Path, row: str, checkpoint: str, dataset: Path, overrides: list[str]) -> dict:
    """``tubelets evaluate-detector``'s report of ``checkpoint`` on ``dataset`` (read when there)."""
    report = work / "frame-ap" / f"{row}-{dataset.name}.json"
    if not report.exists():
        report.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.run([*TUBELETS, "evaluate-detector", str(dataset), "--checkpoint", checkpoint, "--threads",
                              "1", *as_set_args(overrides)], check=True, capture_output=True, text=True).stdout
        report.write_text(out)
    return json.loads(report.read_text())


def video_ap(work: Path, row: str, checkpoint: str, dataset: Path, overrides: list[str], workers: int) -> dict:
    """The overall metrics row of ``tubelets evaluate --tracker iou`` with ``checkpoint`` on ``dataset``."""
    output, run_id = work / "runs", f"{row}-{dataset.name}"
    if not (output / run_id / "results.json").exists():
        subprocess.run([*TUBELETS, "evaluate", str(dataset), str(output), "--config", PRESET, "--tracker", "iou",
                        "--run-id", run_id, "--progress-every", "0", *as_set_args([
                            "scoring.checkpoint=null", f"detector.checkpoint={checkpoint}",
                            "proposals.torch_threads=1", *overrides]), *runner_flags(workers)], check=True)
    rows = read_table(str(output), "metrics", run_id).to_pylist()
    return next(r for r in rows if r["scope"] == "overall")


def table(results: dict, steps: int) -> str:
    """The markdown table of the rows measured, with how much of the gap to the upper bound each closes."""
    lines = ["| detector | train steps | train s | shifted test: frame mask AP | AP50 | video AP (iou) | "
             "share of the gap closed (frame / video) |", "|---|---:|---:|---:|---:|---:|---:|"]
    base, top = results.get("none"), results.get("target-labels")
    for row, found in results.items():
        frame, video = found["frame"]["AP"], found["video"]["AP"]
        share = "-"
        if base and top and row not in ("none", "target-labels"):
            # Only a gap there is can be closed: where the upper bound is not above the shipped detector, "-".
            closed = [f"{(value - base[key]['AP']) / (top[key]['AP'] - base[key]['AP']):+.0%}"
                      if top[key]["AP"] > base[key]["AP"] else "-"
                      for key, value in (("frame", frame), ("video", video))]
            share = " / ".join(closed)
        lines.append(f"| {ROWS[row]} | {0 if row == 'none' else steps} | {found['seconds']:.0f} | "
                     f"{100 * frame:.1f} | {100 * found['frame']['AP50']:.1f} | {100 * video:.1f} | {share} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/tubelets-adapt")
    parser.add_argument("--videos", type=int, default=20, help="videos in each of the four sets")
    parser.add_argument("--seed", type=int, default=7100, help="the sets' seeds are this .. this + 3")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--train-videos", type=int, default=100, help="videos of each train set, source and shifted")
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps of every trained row")
    parser.add_argument("--lr", type=float, default=0.00005, help="peak learning rate of every trained row")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every command (e.g. the smoke test's detector.min_size=48, or "
                        "adapt_detector.domain_weight=1.0)")
    parser.add_argument("--workers", type=int, default=0, help="evaluate's worker processes (0: in memory)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    train_videos = args.train_videos
    sets = make_sets(work, args.videos, train_videos, args.seed,
                     ["--width", str(args.width), "--height", str(args.height)])
    results = {}
    for row in args.rows:
        checkpoint, seconds = train(work, row, sets, args.steps, args.lr, args.overrides)
        results[row] = {"seconds": seconds,
                        "frame": frame_ap(work, row, checkpoint, sets["shifted-test"], args.overrides),
                        "video": video_ap(work, row, checkpoint, sets["shifted-test"], args.overrides, args.workers)}
    source_frame = frame_ap(work, "none", SHIPPED, sets["source-test"], args.overrides)
    source_video = video_ap(work, "none", SHIPPED, sets["source-test"], args.overrides, args.workers)
    print(f"\n{train_videos} videos in each train set, {args.videos} in each test set, {args.width}x"
          f"{args.height}, seeds {args.seed}..{args.seed + 3}; every trained row: {args.steps} steps, batch {BATCH} "
          f"(DANN: and {BATCH} target frames), peak lr {args.lr}\n")
    print(table(results, args.steps))
    print(f"\nThe shipped detector on the SOURCE-domain test set: frame mask AP {100 * source_frame['AP']:.1f}, "
          f"AP50 {100 * source_frame['AP50']:.1f}, video AP (iou) {100 * source_video['AP']:.1f}")


if __name__ == "__main__":
    main()
