"""Which of the ablation's AP differences are more than chance: paired bootstrap intervals over videos.

Reads the runs ``benchmarks/ablation.py`` left under ``--work`` and prints,
per set, each comparison the issue's expected shape makes (``ipdt`` above
each single level, each single level above ``iou`` linking): the AP
difference on the whole set, its 95 % interval over resamples of the set's
videos (:mod:`tubelets.metrics.vis_bootstrap`) and the share of resamples the
first tracker wins::

    .venv/bin/python benchmarks/ablation.py               # the runs (about 12 min)
    .venv/bin/python benchmarks/ablation_significance.py  # these tables (about two minutes)

An interval that holds 0 means the set cannot tell the two trackers apart.
A second table names the videos that make most of each difference (the
difference with each video minus the difference without it,
:func:`~tubelets.metrics.vis_bootstrap.video_contributions`).
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

from ablation import Variant, add_selection_arguments, results_path, selected_variants, separator, set_folder

from tubelets.metrics.vis_bootstrap import paired_bootstrap, video_contributions

COMPARISONS = [("ipdt", "pixel"), ("ipdt", "instance"), ("pixel", "iou"), ("instance", "iou"), ("ipdt", "iou")]
HEADER = "| set | comparison | AP difference | 95 % interval | resamples won |"
VIDEOS_HEADER = "| set | comparison | AP difference | videos contributing most (id: AP) | any other video, at most |"


def rows(set_name: str, gt: dict, results: dict[str, list], samples: int) -> list[str]:
    """One markdown row per comparison whose two result sets are both in ``results``."""
    lines = []
    for first, second in COMPARISONS:
        if first in results and second in results:
            d = paired_bootstrap(gt, results[first], results[second], "AP", samples)
            lines.append(f"| {set_name} | {first} - {second} | {100 * d.observed:+.1f} | "
                         f"[{100 * d.low:+.1f}, {100 * d.high:+.1f}] | {100 * d.a_wins:.0f} % |")
    return lines


def video_rows(set_name: str, gt: dict, results: dict[str, list], shown: int) -> list[str]:
    """One markdown row per comparison: its ``shown`` largest video contributions and the largest of the rest."""
    lines = []
    for first, second in COMPARISONS:
        if first in results and second in results:
            observed, contributions = video_contributions(gt, results[first], results[second], "AP")
            top = ", ".join(f"{c.video_id}: {100 * c.contribution:+.1f}" for c in contributions[:shown])
            rest = max((abs(c.contribution) for c in contributions[shown:]), default=0.0)
            lines.append(f"| {set_name} | {first} - {second} | {100 * observed:+.1f} | {top} | {100 * rest:.1f} |")
    return lines


def print_table(header: str, lines: list[str]) -> None:
    print(header)
    print(separator(header))
    print("\n".join(lines), flush=True)


def ablation_results(work: Path, set_name: str, variants: list[Variant]) -> dict[str, list]:
    """``{tracker: results}`` of one set's runs with the shared settings (the rows the expected shape compares)."""
    return {variant.tracker: json.loads(results_path(work, set_name, variant.label).read_text())
            for variant in variants if not variant.overrides}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tubelets-ablation"))
    parser.add_argument("--seed", type=int, default=1234, help="the seed the runs' sets were generated with")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--gt", help="a set's instances.json: compare --results files instead of the ablation's runs")
    parser.add_argument("--results", action="append", default=[], metavar="NAME=PATH", help="with --gt (repeatable)")
    parser.add_argument("--videos", type=int, default=3, help="videos named per comparison in the second table")
    add_selection_arguments(parser)
    args = parser.parse_args(argv)
    if args.gt:
        named = dict(item.split("=", 1) for item in args.results)
        results = {name: json.loads(Path(path).read_text()) for name, path in named.items()}
        sets = [(Path(args.gt).parent.name, json.loads(Path(args.gt).read_text()), results)]
    else:
        work = Path(args.work)
        sets = [(name, json.loads((set_folder(work, args.seed, name) / "instances.json").read_text()),
                 ablation_results(work, name, selected_variants(args))) for name in args.sets]
    print_table(HEADER, [line for name, gt, results in sets for line in rows(name, gt, results, args.samples)])
    print()
    print_table(VIDEOS_HEADER, [line for name, gt, results in sets
                                for line in video_rows(name, gt, results, args.videos)])


if __name__ == "__main__":
    main()
