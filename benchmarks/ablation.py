"""The IPDT ablation: iou linking vs. the instance level, the pixel level and both, through the real pipeline.

Generates two Shapes-VIS evaluation sets (``tubelets synth --videos 20 --seed
1234``, and the same with ``--hard``), runs ``tubelets evaluate`` once per
(set, variant) with the same detector and calibration, reads each run's
``metrics`` table and prints one markdown table (AP, AP50, AP75, AR1, AR10)::

    .venv/bin/python benchmarks/ablation.py [--work /tmp/tubelets-ablation] [--set KEY=VALUE ...]

``--seed`` and ``--videos`` pick other sets (larger ones tell 1-2 AP apart,
see ``ablation_significance.py``); use one ``--work`` folder per choice.

Variants: ``iou`` (overlap linking, the baseline), ``instance`` (Siamese
only), ``pixel`` (FEELVOS only), ``ipdt`` (both), and ``ipdt`` with
``calibration.enabled=false``. ``--set`` overrides go to every run (e.g. a
detector or tracker checkpoint). Runs already present under ``--work`` are
read, not rerun (delete the folder to start over).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tubelets import runs
from tubelets.tables import read_table

VARIANTS = [  # (row label, tracker, extra overrides)
    ("iou (linking baseline)", "iou", []),
    ("instance (Siamese only)", "instance", []),
    ("pixel (FEELVOS only)", "pixel", []),
    ("ipdt", "ipdt", []),
    ("ipdt, no class calibration", "ipdt", ["calibration.enabled=false"]),
]
SETS = [("default", []), ("hard", ["--hard"])]
COLUMNS = ("AP", "AP50", "AP75", "AR1", "AR10")
TUBELETS = [sys.executable, "-m", "tubelets.cli"]


def set_folder(work: Path, seed: int, set_name: str) -> Path:
    return work / f"shapes-{seed}-{set_name}"


def generate(work: Path, seed: int = 1234, videos: int = 20) -> dict[str, Path]:
    """Both evaluation sets (generated once; the generator is deterministic)."""
    return {name: synthesize(set_folder(work, seed, name), videos, seed, flags) for name, flags in SETS}


def synthesize(folder: Path, videos: int, seed: int, flags: list[str]) -> Path:
    """``tubelets synth FOLDER --videos --seed FLAGS`` unless the set is there; a set of another size is refused."""
    if not (folder / "instances.json").exists():
        subprocess.run([*TUBELETS, "synth", str(folder), "--videos", str(videos), "--seed", str(seed), *flags],
                       check=True)
    present = len(json.loads((folder / "instances.json").read_text())["videos"])
    if present != videos:
        raise SystemExit(f"{folder} holds {present} videos, not {videos}: use another --work folder")
    return folder


def results_path(work: Path, set_name: str, label: str) -> Path:
    """The ``results.json`` of one ablation run; exits with what to run when it is missing."""
    path = work / "runs" / run_id(set_name, label) / "results.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run benchmarks/ablation.py --work {work} first")
    return path


def evaluate(dataset: Path, output: Path, run_id: str, tracker: str, overrides: list[str]) -> dict:
    """The overall metrics row of one ``tubelets evaluate`` run (run only if it is not complete; an
    interrupted one is resumed)."""
    status = (runs.read_manifest(str(output), run_id) or {}).get("status")
    if status != runs.COMPLETE:
        sets = [arg for override in overrides for arg in ("--set", override)]
        name = ["--resume", run_id] if status in (runs.FAILED, runs.INTERRUPTED) else ["--run-id", run_id]
        command = [*TUBELETS, "evaluate", str(dataset), str(output), "--tracker", tracker, *name,
                   *sets, "--direct_num_workers=2"]
        started = time.monotonic()
        subprocess.run(command, check=True)
        print(f"{run_id}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    rows = read_table(str(output), "metrics", run_id).to_pylist()
    overall = [row for row in rows if row["scope"] == "overall"]
    if not overall:
        raise RuntimeError(f"run {run_id} under {output} has no overall metrics row")
    return overall[0]


def run_id(set_name: str, label: str) -> str:
    return f"{set_name}-" + "".join(c if c.isalnum() else "-" for c in label).strip("-").replace("--", "-")


def separator(header: str) -> str:
    """The markdown line under ``header`` (``| a | b |``): one ``---|`` per column."""
    return "|" + "---|" * (header.count(" | ") + 1)


def table(results: dict[tuple[str, str], dict]) -> str:
    """Markdown: one row per variant, AP..AR10 for each set (in %)."""
    header = "| tracker | " + " | ".join(f"{s} {c}" for s, _ in SETS for c in COLUMNS) + " |"
    lines = [header, separator(header)]
    for label, _, _ in VARIANTS:
        cells = []
        for set_name, _ in SETS:
            row = results[(set_name, label)]
            cells += ["-" if row[c] is None else f"{100 * row[c]:.1f}" for c in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tubelets-ablation"))
    parser.add_argument("--seed", type=int, default=1234, help="the sets' generator seed")
    parser.add_argument("--videos", type=int, default=20, help="videos per set")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run (repeatable)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    datasets = generate(work, args.seed, args.videos)
    results = {}
    for set_name, _ in SETS:
        for label, tracker, extra in VARIANTS:
            results[(set_name, label)] = evaluate(datasets[set_name], work / "runs", run_id(set_name, label), tracker,
                                                  [*args.overrides, *extra])
    print(table(results))


if __name__ == "__main__":
    main()
