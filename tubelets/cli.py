"""The ``tubelets`` command line: a thin layer over the package's functions.

Messages go to stderr, results to stdout; an error this package raises on
purpose prints one line that says what to fix and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

from tubelets.errors import TubeletsError

Command = Callable[[argparse.Namespace], int]


def _synth(args: argparse.Namespace) -> int:
    from tubelets.synth import generate_dataset

    if args.layout == "davis":
        from tubelets.synth.davis_layout import generate_davis

        names = generate_davis(
            args.out, videos=args.videos, seed=args.seed, width=args.width, height=args.height, hard=args.hard
        )
        print(f"wrote {len(names)} sequences in DAVIS layout to {args.out}", file=sys.stderr)
        return 0
    gt = generate_dataset(
        args.out, videos=args.videos, seed=args.seed, width=args.width, height=args.height, hard=args.hard
    )
    frames = sum(video["length"] for video in gt["videos"])
    print(f"wrote {len(gt['videos'])} videos, {frames} frames, {len(gt['annotations'])} instances to {args.out}", file=sys.stderr)
    return 0


def _score(args: argparse.Namespace) -> int:
    from tubelets.metrics.vis import score_files

    print(json.dumps(score_files(args.gt, args.results), indent=2))
    return 0


def _query(args: argparse.Namespace) -> int:
    from tubelets.query import print_query

    print_query(args.output, args.sql, args.format)
    return 0


def _segment(args: argparse.Namespace) -> int:
    from tubelets.pipelines import segment

    segment.run(args.args)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tubelets.pipelines import evaluate

    evaluate.run(args.args)
    return 0


def _render(args: argparse.Namespace) -> int:
    from tubelets.render import render

    frames = render(args.output, args.video, args.out, run_id=args.run_id)
    print(f"wrote {frames} frames to {args.out}", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    # Parsed here, not in build_parser: the training modules import torch, which
    # every other command would otherwise pay for at start-up.
    parser = argparse.ArgumentParser(prog="tubelets train")
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    detector = models.add_parser("detector", help="the Mask R-CNN proposal model")
    tracker = models.add_parser("tracker", help="the IPDT tracker heads, on a frozen detector")
    if args.args[:1] == ["tracker"]:
        from tubelets.models.ipdt.train import add_train_tracker_arguments, run_train_tracker

        add_train_tracker_arguments(tracker).set_defaults(run=run_train_tracker)
    else:
        from tubelets.models.train_detector import add_train_detector_arguments, run_train_detector

        add_train_detector_arguments(detector).set_defaults(run=run_train_detector)
    parsed = parser.parse_args(args.args)
    parsed.run(parsed)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tubelets.demo import run_demo

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
    parser.add_argument("output", help="an OUTPUT folder (all runs) or one run's folder")
    parser.add_argument("sql", help="one SELECT over tubelets, metrics, dead_letters")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.set_defaults(handler=_query)


def _add_pipeline(commands, name: str, handler: Command, help_text: str, usage: str) -> None:
    # The pipeline parses its own arguments, so Beam's flags (--runner, ...) pass through untouched.
    parser = commands.add_parser(name, help=help_text, usage=usage, add_help=False)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=handler)


def _add_segment(commands) -> None:
    _add_pipeline(commands, "segment", _segment, "videos in, tubelets and dead letters out (a Beam pipeline)",
                  "tubelets segment INPUT OUTPUT [--config CFG] [--set KEY=VALUE] [--tracker NAME] [Beam options]")


def _add_evaluate(commands) -> None:
    _add_pipeline(commands, "evaluate", _evaluate, "segment a labelled data set and score it (a Beam pipeline)",
                  "tubelets evaluate DATASET OUTPUT [--config CFG] [--tracker NAME] [--source jpeg|video] [Beam options]")


def _add_render(commands) -> None:
    parser = commands.add_parser("render", help="draw a run's tubelets over a video, to an mp4")
    parser.add_argument("output", help="the OUTPUT folder of a run (or of several runs)")
    parser.add_argument("video", help="the video file (as given to segment, or a data set's videos/<name>.mp4)")
    parser.add_argument("out", help="the mp4 to write (any fsspec URL)")
    parser.add_argument("--run-id", default=None, help="which run (default: the latest)")
    parser.set_defaults(handler=_render)


def _add_train(commands) -> None:
    _add_pipeline(commands, "train", _train, "train a model on a YouTube-VIS style data set",
                  "tubelets train {detector,tracker} DATASET OUT.pt [--config CFG] [--steps N] [--resume] ...")


def _add_demo(commands) -> None:
    parser = commands.add_parser("demo", help="run the main job on the embedded sample data")
    parser.add_argument("--data", default="sample-data", help="where the sample data set is generated")
    parser.add_argument("--output", default="demo-output", help="where the run's tables go")
    parser.set_defaults(handler=_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tubelets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_synth, _add_segment, _add_evaluate, _add_render, _add_train, _add_score, _add_query, _add_demo):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, unknown = build_parser().parse_known_args(argv)
    if unknown and not hasattr(args, "args"):
        build_parser().error(f"unrecognized arguments: {' '.join(unknown)}")
    if hasattr(args, "args"):
        # A pipeline's own flags and Beam's, in the order given (argparse would move leading flags last).
        args.args = argv[argv.index(args.command) + 1 :]
    try:
        return args.handler(args)
    except TubeletsError as error:
        print(f"tubelets: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and friends: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
