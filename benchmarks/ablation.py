"""The IPDT ablation: iou linking vs. the instance level, the pixel level and both, through the real pipeline.

Generates two Shapes-VIS evaluation sets (``tubelets synth --videos 20 --seed
1234``, and the same with ``--hard``), runs ``tubelets evaluate --config
shapes-vis`` once per (set, variant) with the same detector and calibration,
reads each run's ``metrics`` table and prints one markdown table (AP, AP50,
AP75, AR1, AR10)::

    .venv/bin/python benchmarks/ablation.py [--work /tmp/tubelets-ablation] [--set KEY=VALUE ...]

``--seed`` and ``--videos`` pick other sets (larger ones tell 1-2 AP apart,
see ``ablation_significance.py``); use one ``--work`` folder per choice.

Variants: ``iou`` (overlap linking, the baseline), ``instance`` (Siamese
only), ``pixel`` (FEELVOS only), ``ipdt`` (both), and ``ipdt-no-calibration``
(``ipdt`` with ``calibration.enabled=false``); ``--variants`` and ``--sets``
run some of them only. ``--set`` overrides go to every run (e.g. a detector or
tracker checkpoint). Runs already present under ``--work`` are read, not rerun
(delete the folder to start over).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from shapes_vis import PRESET, TUBELETS, as_set_args, runner_flags, synthesize

from tubelets import runs
from tubelets.tables import read_table


class Variant(NamedTuple):
    name: str  # what --variants selects it by
    label: str  # its row in the table (its runs are named after it)
    tracker: str
    overrides: list[str]  # config overrides of its runs, besides --set's


VARIANTS = [
    Variant("iou", "iou (linking baseline)", "iou", []),
    Variant("instance", "instance (Siamese only)", "instance", []),
    Variant("pixel", "pixel (FEELVOS only)", "pixel", []),
    Variant("ipdt", "ipdt", "ipdt", []),
    Variant("ipdt-no-calibration", "ipdt, no class calibration", "ipdt", ["calibration.enabled=false"]),
]
SETS = [("default", []), ("hard", ["--hard"])]  # (name, tubelets synth flags)
COLUMNS = ("AP", "AP50", "AP75", "AR1", "AR10")


def set_folder(work: Path, seed: int, set_name: str) -> Path:
    return work / f"shapes-{seed}-{set_name}"


def generate(work: Path, seed: int = 1234, videos: int = 20, sets: list[str] | None = None) -> dict[str, Path]:
    """The evaluation sets (all, or those named in ``sets``), each generated once (the generator is deterministic)."""
    return {name: synthesize(set_folder(work, seed, name), videos, seed, flags) for name, flags in SETS
            if sets is None or name in sets}


def names_in(known: list[str]):
    """An argparse type: ``"a,b"`` -> ``["a", "b"]``, each one of ``known``, in ``known``'s order."""
    def parse(text: str) -> list[str]:
        given = [name for name in text.split(",") if name]
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; known: {','.join(known)}")
        return [name for name in known if name in given]
    return parse


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--variants`` and ``--sets``: the rows and sets to run, or (diagnosis, significance) to read."""
    variant_names, set_names = [v.name for v in VARIANTS], [name for name, _ in SETS]
    parser.add_argument("--variants", type=names_in(variant_names), default=variant_names,
                        help=f"comma-separated, of {','.join(variant_names)} (default: all)")
    parser.add_argument("--sets", type=names_in(set_names), default=set_names,
                        help=f"comma-separated, of {','.join(set_names)} (default: both)")


def selected_variants(args: argparse.Namespace) -> list[Variant]:
    return [variant for variant in VARIANTS if variant.name in args.variants]


def results_path(work: Path, set_name: str, label: str) -> Path:
    """The ``results.json`` of one ablation run; exits with what to run when it is missing."""
    path = work / "runs" / run_id(set_name, label) / "results.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run benchmarks/ablation.py --work {work} first")
    return path


def evaluate(dataset: Path, output: Path, run_id: str, tracker: str, overrides: list[str], workers: int = 2) -> dict:
    """The overall metrics row of one ``tubelets evaluate`` run (run only if it is not complete; an
    interrupted one is resumed)."""
    status = (runs.read_manifest(str(output), run_id) or {}).get("status")
    if status != runs.COMPLETE:
        name = ["--resume", run_id] if status in (runs.FAILED, runs.INTERRUPTED) else ["--run-id", run_id]
        command = [*TUBELETS, "evaluate", str(dataset), str(output), "--config", PRESET, "--tracker", tracker,
                   *name, *as_set_args(overrides), *runner_flags(workers)]
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


def table(results: dict[tuple[str, str], dict], variants: list[Variant], sets: list[str]) -> str:
    """Markdown: one row per variant, AP..AR10 for each set (in %)."""
    header = "| tracker | " + " | ".join(f"{s} {c}" for s in sets for c in COLUMNS) + " |"
    lines = [header, separator(header)]
    for variant in variants:
        cells = []
        for set_name in sets:
            row = results[(set_name, variant.label)]
            cells += ["-" if row[c] is None else f"{100 * row[c]:.1f}" for c in COLUMNS]
        lines.append(f"| {variant.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tubelets-ablation"))
    parser.add_argument("--seed", type=int, default=1234, help="the sets' generator seed")
    parser.add_argument("--videos", type=int, default=20, help="videos per set")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run (repeatable)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes a run (0: in memory)")
    add_selection_arguments(parser)
    args = parser.parse_args(argv)
    work = Path(args.work)
    datasets = generate(work, args.seed, args.videos, args.sets)
    variants = selected_variants(args)
    results = {}
    for set_name in args.sets:
        for variant in variants:
            results[(set_name, variant.label)] = evaluate(datasets[set_name], work / "runs",
                                                          run_id(set_name, variant.label), variant.tracker,
                                                          [*args.overrides, *variant.overrides], args.workers)
    print(table(results, variants, args.sets))


if __name__ == "__main__":
    main()
