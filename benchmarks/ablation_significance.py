"""Which of the ablation's AP differences are more than chance: paired bootstrap intervals over videos.

Reads the runs ``benchmarks/ablation.py`` left under ``--work`` and prints,
per set, each comparison the issue's expected shape makes (``ipdt`` above
each single level, each single level above ``iou`` linking): the AP
difference on the whole set, its 95 % interval over resamples of the set's
videos (:mod:`tubelets.metrics.vis_bootstrap`) and the share of resamples the
first tracker wins::

    .venv/bin/python benchmarks/ablation.py               # the runs (about 12 min)
    .venv/bin/python benchmarks/ablation_significance.py  # this table (about a minute)

An interval that holds 0 means the set cannot tell the two trackers apart.
``--gt instances.json --results NAME=results.json ...`` compares any result
files of one set instead (the names as in the comparisons: iou, instance,
pixel, ipdt).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from ablation import SETS, VARIANTS, results_path, set_folder

from tubelets.metrics.vis_bootstrap import paired_bootstrap

COMPARISONS = [("ipdt", "pixel"), ("ipdt", "instance"), ("pixel", "iou"), ("instance", "iou"), ("ipdt", "iou")]
HEADER = "| set | comparison | AP difference | 95 % interval | resamples won |"


def rows(set_name: str, gt: dict, results: dict[str, list], samples: int) -> list[str]:
    """One markdown row per comparison whose two result sets are both in ``results``."""
    lines = []
    for first, second in COMPARISONS:
        if first in results and second in results:
            d = paired_bootstrap(gt, results[first], results[second], "AP", samples)
            lines.append(f"| {set_name} | {first} - {second} | {100 * d.observed:+.1f} | "
                         f"[{100 * d.low:+.1f}, {100 * d.high:+.1f}] | {100 * d.a_wins:.0f} % |")
    return lines


def ablation_results(work: Path, set_name: str) -> dict[str, list]:
    """``{tracker: results}`` of one set's calibrated runs (the rows the expected shape compares)."""
    results = {}
    for label, tracker, extra in VARIANTS:
        if not extra:
            results[tracker] = json.loads(results_path(work, set_name, label).read_text())
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tubelets-ablation"))
    parser.add_argument("--seed", type=int, default=1234, help="the seed the runs' sets were generated with")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--gt", help="a set's instances.json: compare --results files instead of the ablation's runs")
    parser.add_argument("--results", action="append", default=[], metavar="NAME=PATH", help="with --gt (repeatable)")
    args = parser.parse_args(argv)
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    if args.gt:
        named = dict(item.split("=", 1) for item in args.results)
        results = {name: json.loads(Path(path).read_text()) for name, path in named.items()}
        print("\n".join(rows(Path(args.gt).parent.name, json.loads(Path(args.gt).read_text()), results,
                             args.samples)), flush=True)
        return
    work = Path(args.work)
    for set_name, _ in SETS:
        gt = json.loads((set_folder(work, args.seed, set_name) / "instances.json").read_text())
        print("\n".join(rows(set_name, gt, ablation_results(work, set_name), args.samples)), flush=True)


if __name__ == "__main__":
    main()
