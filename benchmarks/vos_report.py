"""VOS report: J&F of the `vos` and `point` tasks and of a VIS run's tracks matched to the same objects.

Generates a Shapes-VIS set in DAVIS layout (``tubelets synth --layout davis``),
then, through the real pipeline, each with ``--config shapes-vis``::

    tubelets evaluate --task vos   DAVIS OUT   (first-appearance masks as prompts)
    tubelets evaluate --task point DAVIS OUT   (the farthest interior point of each)
    tubelets segment               DAVIS OUT   (VIS, the default tracker: every instance, no prompt)

and scores the VIS run's tubelets as VOS output: each annotated object gets
its best-overlapping tubelet, one to one (:mod:`tubelets.metrics.davis_matching`).
Prints one markdown table::

    .venv/bin/python benchmarks/vos_report.py [--work /tmp/tubelets-vos] [--videos 20] [--seed 1234] [--workers 2]

Runs already present under ``--work`` are read, not rerun (delete the folder to start over).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from shapes_vis import PRESET, TUBELETS, runner_flags

from tubelets.io.davis import DavisDataset, object_ids_in
from tubelets.metrics.davis import summarize
from tubelets.metrics.davis_matching import evaluate_tubelets
from tubelets.tubelet_rows import tubelet_from_row
from tubelets.tables import read_table



def run_once(output: Path, run_id: str, command: list[str], workers: int) -> float:
    """Run a pipeline command unless its run folder exists; its wall time in seconds (0 when read)."""
    if (output / run_id).exists():
        return 0.0
    started = time.monotonic()
    subprocess.run([*TUBELETS, *command, "--config", PRESET, "--run-id", run_id, *runner_flags(workers)], check=True)
    return time.monotonic() - started


def overall_row(output: Path, run_id: str) -> dict:
    rows = read_table(str(output), "metrics", run_id).to_pylist()
    return next(row for row in rows if row["scope"] == "overall")


def matched_vis_scores(davis: DavisDataset, output: Path, run_id: str) -> dict:
    """``summarize`` of the VIS run's tubelets matched to every sequence's objects."""
    by_video: dict[str, list] = {}
    for row in read_table(str(output), "tubelets", run_id).to_pylist():
        by_video.setdefault(row["video"], []).append(tubelet_from_row(row))
    results = []
    for seq in davis.sequences():
        truth = davis.annotations(seq)
        if object_ids_in(truth):
            results.append(evaluate_tubelets(truth, object_ids_in(truth), by_video.get(seq, []), sequence=seq))
    return summarize(results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/tubelets-vos")
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--workers", type=int, default=2, help="worker processes a run (0: in memory)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    data, output = work / f"davis-{args.seed}", work / "runs"
    if not (data / "ImageSets").exists():
        subprocess.run([*TUBELETS, "synth", str(data), "--videos", str(args.videos), "--seed", str(args.seed),
                        "--layout", "davis"], check=True)
    seconds = {
        "vos": run_once(output, "vos", ["evaluate", "--task", "vos", str(data), str(output)], args.workers),
        "point": run_once(output, "point", ["evaluate", "--task", "point", str(data), str(output)], args.workers),
        "vis": run_once(output, "vis", ["segment", str(data), str(output)], args.workers),
    }
    vis = matched_vis_scores(DavisDataset(str(data)), output, "vis")
    rows = [
        ("vos (first-appearance mask)", overall_row(output, "vos"), seconds["vos"]),
        ("point (one click per object)", overall_row(output, "point"), seconds["point"]),
        ("VIS ipdt, tracks matched to the objects", {
            "JF_mean": vis["J&F-Mean"], "J_mean": vis["J-Mean"], "J_recall": vis["J-Recall"], "F_mean": vis["F-Mean"],
            "F_recall": vis["F-Recall"], "J_decay": vis["J-Decay"], "prompt_iou": None,
        }, seconds["vis"]),
    ]
    print(f"Shapes-VIS in DAVIS layout, --seed {args.seed} --videos {args.videos} (J/F in %)\n")
    print("| run | J&F | J | J recall | J decay | F | F recall | prompt IoU | time (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, row, wall in rows:
        cells = [row[k] for k in ("JF_mean", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall")]
        iou = "-" if row["prompt_iou"] is None else f"{100 * row['prompt_iou']:.1f}"
        time_cell = f"{wall:.0f}" if wall else "(read)"
        print(f"| {label} | " + " | ".join(f"{100 * v:.1f}" for v in cells) + f" | {iou} | {time_cell} |")


if __name__ == "__main__":
    main()
