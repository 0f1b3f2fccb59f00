"""The ``tubelets`` command line: a thin layer over the package's functions.

Messages go to stderr, results to stdout; a mistake prints one line that says
what to fix (``--debug`` adds the traceback). Exit codes are in
:mod:`tubelets.errors`: 0 complete, 1 the run failed, 2 a mistake found before
any video, 3 too many inputs failed (``--max-failed``), 4 a ``--fail-on-drop``
gate failed (``compare``, ``evaluate --baseline``), 130/143 interrupted.
``-v`` shows Beam's and the storage libraries' logs, which otherwise go to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

from tubelets.cli_adapt import add_adapt
from tubelets.cli_models import add_evaluate_detector, add_train
from tubelets.errors import EXIT_RUN_FAILED, TubeletsError

Command = Callable[[argparse.Namespace], int]


def _synth(args: argparse.Namespace) -> int:
    from tubelets.synth import generate_dataset

    if args.layout == "davis":
        from tubelets.synth.davis_layout import generate_davis

        names = generate_davis(
            args.out, videos=args.videos, seed=args.seed, width=args.width, height=args.height, hard=args.hard,
            domain=args.domain,
        )
        print(f"wrote {len(names)} sequences in DAVIS layout to {args.out}", file=sys.stderr)
        return 0
    gt = generate_dataset(
        args.out, videos=args.videos, seed=args.seed, width=args.width, height=args.height, hard=args.hard,
        domain=args.domain,
    )
    frames = sum(video["length"] for video in gt["videos"])
    print(f"wrote {len(gt['videos'])} videos, {frames} frames, {len(gt['annotations'])} instances to {args.out}",
          file=sys.stderr)
    return 0


def _score(args: argparse.Namespace) -> int:
    from tubelets.metrics.vis import score_files

    print(json.dumps(score_files(args.gt, args.results), indent=2))
    return 0


def _query(args: argparse.Namespace) -> int:
    from tubelets.query import print_query

    print_query(args.output, args.sql, args.format, include_incomplete=args.include_incomplete)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from tubelets.compare import print_comparison

    print_comparison(args.output, args.baseline, args.candidate, samples=args.samples, seed=args.seed, top=args.top,
                     fmt=args.format, fail_on_drop=args.fail_on_drop)
    return 0


def _quiet_workers(args: argparse.Namespace):
    """Beam's workers log to a file (its path in the run's manifest); ``-v`` shows them on the terminal too."""
    from tubelets.logs import capture_process_output

    return capture_process_output(verbose=args.verbose)


def _segment(args: argparse.Namespace) -> int:
    from tubelets.pipelines import segment

    with _quiet_workers(args):
        segment.run(args.args)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tubelets.pipelines import evaluate

    with _quiet_workers(args):
        evaluate.run(args.args)
    return 0


def _render(args: argparse.Namespace) -> int:
    from tubelets.render import render

    frames = render(args.output, args.video, args.out, run_id=args.run_id, include_incomplete=args.include_incomplete)
    print(f"wrote {frames} frames to {args.out}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from tubelets.report import write_report

    summary = write_report(args.run_folder, args.out, baseline=args.baseline, worst=args.worst)
    print(f"wrote the report of run {summary.run_id} to {summary.out_url} ({summary.bytes / 1e6:.1f} MB, "
          f"{summary.seconds:.1f} s)", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from tubelets.export import export

    summary = export(args.format, args.run_folder, args.dest, min_score=args.min_score, gt_url=args.gt)
    for line in summary.lines():
        print(line, file=sys.stderr)
    print(summary.results(), end="")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tubelets.demo import run_demo

    with _quiet_workers(args):
        run_demo(args.data, args.output)
    return 0


def _add_synth(commands) -> None:
    parser = commands.add_parser("synth", help="write a Shapes-VIS synthetic data set (YouTube-VIS or DAVIS layout)")
    parser.add_argument("out", help="output folder (any fsspec URL)")
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--hard", action="store_true", help="more objects, longer videos, blur, flicker, fast motion")
    parser.add_argument("--domain", choices=("source", "shifted", "varied"), default="source",
                        help="source: the plain Shapes-VIS look; shifted: the same scenes (same annotations for a "
                        "seed) in another look: washed-out hues, woven ground, uneven light, blur, noise, heavy JPEG "
                        "(for domain adaptation; no shipped model is trained on it); varied: each video its own "
                        "milder camera, palette, light, texture and compression (training variety)")
    parser.add_argument("--layout", choices=("youtube-vis", "davis"), default="youtube-vis",
                        help="youtube-vis: instances.json + JPEGImages/ + videos/; davis: JPEGImages/480p/, "
                        "Annotations/480p/ (palette PNGs), ImageSets/2017/val.txt + videos/ (same videos for a seed)")
    parser.set_defaults(handler=_synth)


def _add_score(commands) -> None:
    parser = commands.add_parser("score", help="score a YouTube-VIS results file against ground truth")
    parser.add_argument("gt", help="ground-truth instances.json (any fsspec URL)")
    parser.add_argument("results", help="results.json in the YouTube-VIS results format")
    parser.set_defaults(handler=_score)


def _add_query(commands) -> None:
    parser = commands.add_parser("query", help="read-only SQL over a run folder's Parquet tables")
    parser.add_argument("output", help="an OUTPUT folder (its complete runs) or one run's folder")
    parser.add_argument("sql", help="one SELECT over tubelets, metrics, dead_letters")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="read every run, not only complete ones: running, failed, interrupted, no manifest")
    parser.set_defaults(handler=_query)


def _add_compare(commands) -> None:
    parser = commands.add_parser("compare", help="compare two evaluate runs: differences with bootstrap intervals, "
                                 "and a gate on drops (exit 4)")
    parser.add_argument("output", help="the OUTPUT folder holding both runs")
    parser.add_argument("baseline", metavar="BASELINE_RUN", help="the run compared against (a complete evaluate run)")
    parser.add_argument("candidate", metavar="CANDIDATE_RUN", help="the run compared (of the same data set)")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples of the videos (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0: reproducible)")
    parser.add_argument("--top", type=int, default=10, help="videos listed whose AP dropped, and rose, the most")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--fail-on-drop", action="append", default=[], metavar="METRIC=X",
                        help="exit 4 when METRIC (AP, AP50, ... ARl) is lower by more than X (0..1) and the 95 %% "
                        "interval of the difference is below 0 (repeatable)")
    parser.set_defaults(handler=_compare)


def _add_pipeline(commands, name: str, handler: Command, help_text: str, usage: str) -> None:
    # The pipeline parses its own arguments, so Beam's flags (--runner, ...) pass through untouched.
    parser = commands.add_parser(name, help=help_text, usage=usage, add_help=False)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=handler)


def _add_segment(commands) -> None:
    _add_pipeline(commands, "segment", _segment, "videos in, tubelets and dead letters out (a Beam pipeline)",
                  "tubelets segment INPUT OUTPUT [--config CFG] [--set KEY=VALUE] [--tracker NAME] [--run-id ID | "
                  "--resume ID] [--max-failed N|F|P%] [Beam options]")


def _add_evaluate(commands) -> None:
    _add_pipeline(commands, "evaluate", _evaluate, "segment a labelled data set and score it (a Beam pipeline)",
                  "tubelets evaluate DATASET OUTPUT [--config CFG] [--tracker NAME] [--source jpeg|video] "
                  "[--run-id ID | "
                  "--resume ID] [--max-failed N|F|P%] [--baseline RUN [--fail-on-drop METRIC=X]] [Beam options]")


def _add_render(commands) -> None:
    parser = commands.add_parser("render", help="draw a run's tubelets over a video, to an mp4")
    parser.add_argument("output", help="the OUTPUT folder of a run (or of several runs)")
    parser.add_argument("video", help="the video file (as given to segment, or a data set's videos/<name>.mp4)")
    parser.add_argument("out", help="the mp4 to write (any fsspec URL)")
    parser.add_argument("--run-id", default=None, help="which run, whatever its status (default: the latest complete)")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="the default run is the latest of every run, not only of the complete ones")
    parser.set_defaults(handler=_render)


def _add_report(commands) -> None:
    parser = commands.add_parser("report", help="one self-contained HTML page about a run: metrics, charts, frames")
    parser.add_argument("run_folder", metavar="RUN_FOLDER", help="a complete run's folder, OUTPUT/<run_id>")
    parser.add_argument("out", metavar="OUT.html", help="the HTML file to write (any fsspec URL)")
    parser.add_argument("--baseline", default=None, metavar="RUN_ID",
                        help="a run id of the same OUTPUT to compare with")
    parser.add_argument("--worst", type=int, default=3, metavar="N",
                        help="how many of the worst videos get a strip of frames (default 3)")
    parser.set_defaults(handler=_report)


def _add_export(commands) -> None:
    from tubelets.export import DEFAULT_MIN_SCORE, FORMATS

    parser = commands.add_parser("export", help="write a complete run's tubelets in another format: per-frame "
                                 "instance label images (16-bit PNG, category_id * 1000 + instance)")
    parser.add_argument("run_folder", metavar="RUN_FOLDER", help="a complete run's folder, OUTPUT/<run_id>")
    parser.add_argument("dest", metavar="DEST", help="a new (or empty) folder to write to (any fsspec URL)")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS),
                        help="instance-png: DEST/<video>/<frame:05d>.png and DEST/index.json (docs/export.md)")
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                        help=f"tubelets scoring below are left out (default {DEFAULT_MIN_SCORE})")
    parser.add_argument("--gt", default=None, metavar="GT_FOLDER",
                        help="label images in the same format: score the export against them (per-class IoU over "
                        "all frames and its mean, to stdout and the run's metrics table, scope class_iou)")
    parser.set_defaults(handler=_export)


def _status(args: argparse.Namespace) -> int:
    from tubelets.progress import folder_progress

    for progress in folder_progress(args.folder):
        print(progress.line())
    return 0


def _add_status(commands) -> None:
    parser = commands.add_parser("status", help="how far a run is (inputs done, frames/s, time left), or every run's")
    parser.add_argument("folder", help="a run folder (OUTPUT/<run_id>), or an OUTPUT folder: a line per run")
    parser.set_defaults(handler=_status)


def _add_demo(commands) -> None:
    parser = commands.add_parser("demo", help="run the main job on the embedded sample data")
    parser.add_argument("--data", default="sample-data", help="where the sample data set is generated")
    parser.add_argument("--output", default="demo-output", help="where the run's tables go")
    parser.set_defaults(handler=_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tubelets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_synth, _add_segment, _add_evaluate, _add_render, _add_report, _add_export, add_train,
                add_adapt, add_evaluate_detector, _add_score, _add_query, _add_compare, _add_status, _add_demo):
        add(commands)
    return parser


GLOBAL_FLAGS = {"--debug": "debug", "-v": "verbose", "--verbose": "verbose"}


def split_global_flags(argv: Sequence[str]) -> tuple[list[str], set[str]]:
    """``argv`` without ``--debug``/``-v``/``--verbose`` (accepted anywhere on the line), and which were given."""
    given = {GLOBAL_FLAGS[arg] for arg in argv if arg in GLOBAL_FLAGS}
    return [arg for arg in argv if arg not in GLOBAL_FLAGS], given


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (0, 1, 2, 3, 4, 130/143: :mod:`tubelets.errors`)."""
    from tubelets.logs import configure_logging

    argv, flags = split_global_flags(list(sys.argv[1:] if argv is None else argv))
    configure_logging("verbose" in flags)
    args, unknown = build_parser().parse_known_args(argv)
    if unknown and not hasattr(args, "args"):
        build_parser().error(f"unrecognized arguments: {' '.join(unknown)}")
    if hasattr(args, "args"):
        # A pipeline's own flags and Beam's, in the order given (argparse would move leading flags last).
        args.args = argv[argv.index(args.command) + 1 :]
    args.verbose = "verbose" in flags
    try:
        return args.handler(args)
    except TubeletsError as error:
        print(f"tubelets: error: {error}", file=sys.stderr)
        if "debug" in flags:
            raise
        return error.exit_code
    except BrokenPipeError:  # output piped into `head` and friends: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # noqa: BLE001 - one line for the user; the traceback is behind --debug
        if "debug" in flags:
            raise
        print(f"tubelets: error: {type(error).__name__}: "
              f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}"
              f" (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
