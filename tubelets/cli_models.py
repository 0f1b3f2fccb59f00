"""The model commands of ``tubelets``: ``train detector|tracker|scorer`` and ``evaluate-detector``.

Their arguments are parsed here and handed to plain functions of
:mod:`tubelets.models` (:func:`~tubelets.models.train_detector.train_detector`,
:func:`~tubelets.models.ipdt.train.train_tracker`,
:func:`~tubelets.models.evaluate_detector.evaluate_checkpoint`). Those import
torch, so they are imported when their command runs, not when the command
line starts. Summaries go to stderr; ``evaluate-detector``'s numbers, as JSON, to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

# The config section each `train MODEL` reads its settings from, and --steps and --seed override.
TRAIN_SECTIONS = {"detector": "train_detector", "tracker": "train_tracker"}


def add_training_arguments(
    parser: argparse.ArgumentParser, section: str, out_example: str, several_datasets: bool = False
) -> argparse.ArgumentParser:
    """DATASET, OUT and the flags every training command takes; ``section`` is its config section.

    With ``several_datasets``, ``DATASET`` may be given more than once (``args.dataset`` is then a list).
    """
    if several_datasets:
        parser.add_argument("dataset", nargs="+", help="YouTube-VIS data set folder(s) (any fsspec URL) with "
                            "instances.json; several are trained on as one")
    else:
        parser.add_argument("dataset", help="YouTube-VIS data set folder (any fsspec URL) with instances.json")
    return add_training_flags(parser, section, out_example)


def add_training_flags(parser: argparse.ArgumentParser, section: str, out_example: str) -> argparse.ArgumentParser:
    """OUT and the flags of every command that trains a model (``train``, ``adapt``), whose settings are the
    config section ``section`` (``--steps`` and ``--seed`` override its keys; :func:`training_config`)."""
    parser.add_argument("out", help=f"checkpoint to write (any fsspec URL), e.g. {out_example}")
    parser.add_argument("--config", default=None, help="config preset name or YAML file (default: default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"config override, e.g. {section}.lr=0.0005 (repeatable)")
    parser.add_argument("--steps", type=int, default=None, help=f"{section}.steps")
    parser.add_argument("--seed", type=int, default=None, help=f"{section}.seed")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint at OUT if there is one")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(config_section=section)
    return parser


def training_config(args: argparse.Namespace) -> dict:
    """The run's config: ``--config``, ``--set``, then ``--steps``/``--seed`` as overrides of the command's section."""
    from tubelets.config import load_config  # here: pydantic, yaml and fsspec cost every command 0.1 s at start

    section = args.config_section
    overrides = list(args.overrides)
    overrides += [f"{section}.steps={args.steps}"] if args.steps is not None else []
    overrides += [f"{section}.seed={args.seed}"] if args.seed is not None else []
    return load_config(args.config, overrides)


def set_torch_threads(threads: Optional[int]) -> None:
    """``--threads``: torch's CPU threads for this process (None: torch's choice)."""
    if threads:
        import torch  # here: the command line starts without torch

        torch.set_num_threads(threads)


def trained_line(result, data: str, note: str = "") -> str:
    """The one line a training command ends with: steps, data, time, device, loss and the checkpoint written."""
    return (f"trained {result.steps - result.start_step} steps ({result.start_step}->{result.steps}) on {data} in "
            f"{result.wall_seconds:.0f} s on {result.device}{note}; final loss {result.loss:.3f}; "
            f"checkpoint {result.checkpoint_id} -> {result.checkpoint_url}")


def _train_detector(args: argparse.Namespace) -> int:
    from tubelets.models.train_detector import train_detector

    set_torch_threads(args.threads)
    result = train_detector(args.dataset, args.out, training_config(args), args.resume, args.device,
                            progress=not args.no_progress, max_seconds=args.max_seconds)
    stopped = " (stopped at --max-seconds)" if result.stopped_by_budget else ""
    print(trained_line(result, f"{result.frames} frames", stopped), file=sys.stderr)
    return 0


def _train_tracker(args: argparse.Namespace) -> int:
    from tubelets.models.ipdt.train import train_tracker

    set_torch_threads(args.threads)
    result = train_tracker(args.dataset, args.out, training_config(args), args.resume, args.device,
                           progress=not args.no_progress)
    against = f" against detector {result.detector_checkpoint_id}"
    print(trained_line(result, f"{result.instances} instance frames", against), file=sys.stderr)
    return 0


def _train_scorer(args: argparse.Namespace) -> int:
    from tubelets.models.train_scorer import summary_lines, train_scorer

    result = train_scorer([tuple(pair) for pair in args.run], args.out)
    print("\n".join(summary_lines(result)), file=sys.stderr)
    return 0


def add_train(commands) -> None:
    """``tubelets train {detector,tracker} DATASET OUT.pt [flags]`` and ``tubelets train scorer OUT.pt --run ...``."""
    parser = commands.add_parser("train", help="train a model on a YouTube-VIS style data set")
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    detector = models.add_parser("detector", help="the Mask R-CNN proposal model")
    add_training_arguments(detector, TRAIN_SECTIONS["detector"], "detector.pt", several_datasets=True)
    detector.add_argument("--max-seconds", type=float, default=None,
                          help="stop at this wall-clock budget, the learning-rate decay following the time spent "
                          "(train_detector.steps stays the upper bound; such a run does not --resume)")
    detector.set_defaults(handler=_train_detector)
    tracker = models.add_parser("tracker", help="the IPDT tracker heads, on a frozen detector")
    add_training_arguments(tracker, TRAIN_SECTIONS["tracker"], "tracker.pt")
    tracker.set_defaults(handler=_train_tracker)
    scorer = models.add_parser("scorer", help="the learned tubelet score, on labelled evaluate runs made without one")
    scorer.add_argument("out", help="checkpoint to write (any fsspec URL), e.g. scorer.pt")
    scorer.add_argument("--run", nargs=2, action="append", required=True, metavar=("DATASET", "RUN_FOLDER"),
                        help="a labelled data set and a complete `tubelets evaluate` run on it made with "
                        "--set scoring.checkpoint=null (repeatable; all on one detector)")
    scorer.set_defaults(handler=_train_scorer)


def _evaluate_detector(args: argparse.Namespace) -> int:
    from tubelets.config import load_config
    from tubelets.models.evaluate_detector import evaluate_checkpoint

    overrides = args.overrides + ([f"detector.checkpoint={args.checkpoint}"] if args.checkpoint else [])
    set_torch_threads(args.threads)
    report = evaluate_checkpoint(load_config(args.config, overrides), args.dataset, args.source, args.stride,
                                 progress=True)
    print(json.dumps(report, indent=2))
    print(f"mask AP {report['AP']:.3f}, AP50 {report['AP50']:.3f} on {report['frames']} frames", file=sys.stderr)
    return 0


def add_evaluate_detector(commands) -> None:
    """``tubelets evaluate-detector DATASET [flags]``: per-frame mask AP of a detector checkpoint."""
    parser = commands.add_parser("evaluate-detector", help="per-frame mask AP of a detector checkpoint on a labelled "
                                 "data set (the proposal model alone, no tracking)")
    parser.add_argument("dataset", help="YouTube-VIS data set folder (any fsspec URL)")
    parser.add_argument("--checkpoint", default=None, help="detector.checkpoint (default: the config's)")
    parser.add_argument("--config", default=None, help="config preset name or YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--source", default="jpeg", choices=("jpeg", "video"), help="where frames are read")
    parser.add_argument("--stride", type=int, default=1, help="evaluate every n-th frame")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.set_defaults(handler=_evaluate_detector)
