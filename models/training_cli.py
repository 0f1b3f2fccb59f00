"""Command-line arguments and config set-up shared by ``tubelets train detector|tracker``."""

from __future__ import annotations

import argparse

import torch

from tubelets.config import load_config


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
    return parser


def training_config(args: argparse.Namespace, section: str) -> dict:
    """The run's config (``--steps``/``--seed`` as overrides of ``section``); applies ``--threads``."""
    overrides = list(args.overrides)
    overrides += [f"{section}.steps={args.steps}"] if args.steps is not None else []
    overrides += [f"{section}.seed={args.seed}"] if args.seed is not None else []
    if args.threads:
        torch.set_num_threads(args.threads)
    return load_config(args.config, overrides)
