"""Why the ablation's trackers score as they do: ranking, classes, or the tubelets themselves.

Reads the runs ``benchmarks/ablation.py`` left under ``--work`` (each run's
``results.json`` and its set's ``instances.json``) and prints, per set and
tracker, AP as is and under the oracles of
:mod:`tubelets.metrics.vis_diagnosis` (perfect scores, perfect classes,
both), the share of ground-truth tracks whose best tubelet reaches video IoU
0.5 (and the share an entry of their class reaches), and where the union of
each track with its best tubelet goes::

    .venv/bin/python benchmarks/ablation.py            # the runs (about 12 min)
    .venv/bin/python benchmarks/ablation_diagnosis.py  # this table (about a minute)

"AP, oracle both" is what a tracker's tubelets are worth when only their
masks count: when it is equal across trackers, their AP differences come
from scores and classes, which come from the detector's proposals.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from ablation import add_selection_arguments, results_path, selected_variants, separator, set_folder

from tubelets.metrics.vis_diagnosis import diagnose

HEADER = ("| set | tracker | AP | AP, oracle scores | AP, oracle classes | AP, oracle both | AP50, oracle both "
          "| tracks found | in their class | video IoU | missed | extra | overlap |")


def row(set_name: str, label: str, gt: dict, results_path: Path) -> str:
    diagnosis = diagnose(gt, json.loads(results_path.read_text()))
    ap, frames = diagnosis.ap, diagnosis.frames
    cells = [ap["real"]["AP"], ap["oracle scores"]["AP"], ap["oracle classes"]["AP"], ap["oracle both"]["AP"],
             ap["oracle both"]["AP50"], frames.tracks_found, frames.tracks_found_in_class, frames.iou, frames.missed,
             frames.extra, frames.overlap]
    return f"| {set_name} | {label} | " + " | ".join(f"{100 * value:.1f}" for value in cells) + " |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tubelets-ablation"))
    parser.add_argument("--seed", type=int, default=1234, help="the seed the runs' sets were generated with")
    add_selection_arguments(parser)
    args = parser.parse_args(argv)
    work = Path(args.work)
    print(HEADER)
    print(separator(HEADER))
    for set_name in args.sets:
        gt = json.loads((set_folder(work, args.seed, set_name) / "instances.json").read_text())
        for variant in selected_variants(args):
            print(row(set_name, variant.label, gt, results_path(work, set_name, variant.label)), flush=True)


if __name__ == "__main__":
    main()
