"""``tubelets adapt detector|pixel``: fit the shipped models to unlabelled footage from another domain.

* ``adapt detector SOURCE... OUT.pt --target GLOB``: domain-adversarial training (DANN) of the detector on the
  labelled ``SOURCE`` data sets plus unlabelled frames of the videos ``GLOB`` matches
  (:func:`tubelets.models.domain_adaptation.adapt_detector`).
* ``adapt pixel GLOB OUT.pt``: self-supervised training (MAST-style colour reconstruction) of the pixel-level
  tracker's embedding on raw videos (:func:`tubelets.models.pixel_adaptation.adapt_pixel_embedding`).

Both are resumable (``--resume``) and end with the same one-line summary as ``tubelets train``.
"""

from __future__ import annotations

import argparse
import sys

from tubelets.cli_models import add_training_flags, set_torch_threads, trained_line, training_config

SECTIONS = {"detector": "adapt_detector", "pixel": "adapt_pixel"}


def _adapt_detector(args: argparse.Namespace) -> int:
    from tubelets.models.domain_adaptation import adapt_detector

    set_torch_threads(args.threads)
    result = adapt_detector(args.source, args.target, args.out, training_config(args), args.resume, args.device,
                            progress=not args.no_progress)
    print(trained_line(result, f"{args.target} (unlabelled) and {len(args.source)} labelled set(s)"), file=sys.stderr)
    return 0


def _adapt_pixel(args: argparse.Namespace) -> int:
    from tubelets.models.pixel_adaptation import adapt_pixel_embedding

    set_torch_threads(args.threads)
    result = adapt_pixel_embedding(args.videos, args.out, training_config(args), args.resume, args.device,
                                   progress=not args.no_progress)
    print(trained_line(result, f"{args.videos} (unlabelled)"), file=sys.stderr)
    return 0


def add_adapt(commands) -> None:
    """``tubelets adapt detector SOURCE... OUT --target GLOB`` and ``tubelets adapt pixel GLOB OUT``."""
    parser = commands.add_parser("adapt", help="adapt a model to unlabelled videos from another domain")
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    detector = models.add_parser("detector", help="domain-adversarial (DANN) training of the detector")
    detector.add_argument("source", nargs="+", help="labelled YouTube-VIS data set folder(s) (any fsspec URL)")
    add_training_flags(detector, SECTIONS["detector"], "adapted-detector.pt")
    detector.add_argument("--target", required=True,
                          help="the unlabelled videos: a glob or folder on any fsspec URL (e.g. 'gs://b/new/*.mp4')")
    detector.set_defaults(handler=_adapt_detector)
    pixel = models.add_parser("pixel", help="self-supervised (colour reconstruction) training of the pixel embedding")
    pixel.add_argument("videos", help="the unlabelled videos: a glob or folder on any fsspec URL")
    add_training_flags(pixel, SECTIONS["pixel"], "adapted-tracker.pt")
    pixel.set_defaults(handler=_adapt_pixel)
