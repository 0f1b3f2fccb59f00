"""What the trackers could gain at all: each oracle puts the truth in place of one of their decisions.

Runs ``tracker_validation.py``'s sets and trackers with the propagator of
``instance``, ``pixel`` and ``ipdt`` changed in one place (``--oracle``):

* ``fill-masks``: each frame the heads fill takes, in its tubelet only, the
  true mask it overlaps most (kept where it overlaps none); the tracking state
  and decisions are unchanged, merging reads the new masks;
* ``guard``: a direction ``max_unconfirmed`` steps unconfirmed goes on while
  its latest fill is on its own object (the true track its seed overlaps at
  mask IoU 0.5 or more; the fill at 0.5 or more); when it stops, only the
  unconfirmed fills off that object are dropped;
* ``relinks``: a relink the tracker makes is refused when the two seeds lie on
  different true tracks, and any other stopped forward extension and new
  instance seeded on the same true track within ``relink_frames`` are chained;
* ``relinks-truth``: the same chaining by the true tracks, but none of the
  tracker's own relinks is kept (also those whose seeds lie on no true track).

Oracles combine: ``--oracle fill-masks,guard,relinks`` takes all three
decisions from the truth at once. The guard then reads the true fill masks,
so a fill is on its own object when that is the object it overlaps most.

It prints the table and the paired bootstrap rows of ``tracker_validation.py``
and, per set, how often the oracle acted::

    .venv/bin/python benchmarks/tracker_oracles.py --oracle guard --seed 1234 --hard-seed 1234 --videos 20
    .venv/bin/python benchmarks/tracker_oracles.py --oracle fill-masks,guard,relinks

Compare with ``tracker_validation.py`` on the same sets (the ``benchmarks/IPDT.md`` figures).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys

import numpy as np
import torch
from tracker_validation import add_set_arguments, compare_sets

from tubelets import masks
from tubelets.config import load_config
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.models.ipdt import identity, propagation
from tubelets.models.trackers import ipdt as dual_trackers
from tubelets.records import TubeletFrame

ORACLES = ("fill-masks", "guard", "relinks", "relinks-truth")
MATCH_IOU = 0.5  # a seed or a fill is on a true track at this mask IoU or more


class Truth:
    """The set's true masks, ``{(video id, frame): {track id: RLE}}``, and the video being tracked."""

    def __init__(self, dataset: YouTubeVISDataset):
        self.masks: dict[tuple[int, int], dict[int, dict]] = {}
        for video in dataset.videos:
            for track in dataset.tracks(video.id):
                for frame, rle in enumerate(track.segmentations):
                    if rle is not None:
                        self.masks.setdefault((video.id, frame), {})[track.id] = rle
        self.video: int | None = None
        self.acted: collections.Counter = collections.Counter()

    def in_frame(self, frame: int) -> dict[int, dict]:
        return self.masks.get((self.video, frame), {})

    def track_of(self, instance: propagation.Instance) -> int | None:
        """The true track the instance's seed lies on, or None."""
        if not hasattr(instance, "oracle_track"):
            instance.oracle_track = self.best_track(instance.seed.mask, instance.seed_frame, MATCH_IOU)
        return instance.oracle_track

    def best_track(self, rle: dict, frame: int, at_least: float) -> int | None:
        tracks = self.in_frame(frame)
        if not tracks:
            return None
        ids = list(tracks)
        ious = masks.iou_matrix([rle], [tracks[i] for i in ids])[0]
        return ids[int(ious.argmax())] if ious.max() >= at_least and ious.max() > 0 else None

    def on_different_tracks(self, first: propagation.Instance, second: propagation.Instance) -> bool:
        """Whether both seeds lie on true tracks, and not on the same one."""
        a, b = self.track_of(first), self.track_of(second)
        return a is not None and b is not None and a != b

    def on_own_object(self, instance: propagation.Instance, frame: int) -> bool:
        track = self.track_of(instance)
        return (track is not None and frame in instance.frames
                and self.best_track(instance.frames[frame].mask, frame, MATCH_IOU) == track)


class OracleIdentity(identity.IdentityCheck):
    """Relinks by the true tracks (``--oracle relinks``), keeping none of the tracker's own with ``keep_own`` off."""

    def __init__(self, settings, model_config, truth: Truth, keep_own: bool = True):
        super().__init__(settings, model_config)
        self.truth = truth
        self.keep_own = keep_own
        self.refused: set[tuple[int, int]] = set()  # a refused pair stays a candidate, so count it once

    def start_video(self, images) -> None:
        super().start_video(images)
        self.refused = set()

    def relinks(self, started, stopped):
        truth = self.truth
        links: dict[int, int] = {}
        if self.keep_own:  # without them the tracker offers other pairs at every frame: nothing to count
            own = super().relinks(started, stopped)
            links = {new: old for new, old in own.items()
                     if not truth.on_different_tracks(_by_serial(started, new), _by_serial(stopped, old))}
            refused = set(own.items()) - set(links.items()) - self.refused
            truth.acted["tracker's relinks refused"] += len(refused)
            self.refused |= refused
        used = set(links.values())
        for new in started:
            if new.serial in links or truth.track_of(new) is None:
                continue
            for old in stopped:
                gap = new.seed_frame - max(old.frames)
                if old.serial not in used and 1 <= gap <= self.settings.relink_frames + 1 \
                        and truth.track_of(old) == truth.track_of(new):
                    links[new.serial] = old.serial
                    used.add(old.serial)
                    truth.acted["relinks added"] += 1
                    break
        return links


class OraclePropagator(propagation.Propagator):
    """The propagator with decisions taken by the truth: the ``ORACLES`` of the set ``TRUTH`` (set by main)."""

    ORACLES: frozenset[str] = frozenset()
    TRUTH: Truth | None = None

    def __init__(self, model, settings):
        super().__init__(model, settings)
        if self.ORACLES & {"relinks", "relinks-truth"}:
            keep_own = "relinks" in self.ORACLES
            self.identity = OracleIdentity(settings, model.config, self.TRUTH, keep_own)

    def run(self, proposals, encodings, images=None):
        self.TRUTH.video = proposals.meta.video_id
        return super().run(proposals, encodings, images)

    def _advance(self, active, frame, previous, detections, encodings, holders=()):
        alive = super()._advance(active, frame, previous, detections, encodings, holders)
        if "fill-masks" in self.ORACLES:
            for instance in active:
                if instance.unconfirmed and instance.unconfirmed[-1] == frame and frame in instance.frames:
                    self._true_fill(instance, frame)
        return alive

    def _true_fill(self, instance, frame: int) -> None:
        truth, item = self.TRUTH, instance.frames[frame]
        track = truth.best_track(item.mask, frame, 0.0)
        truth.acted["filled frames"] += 1
        if track is not None:
            rle = truth.in_frame(frame)[track]
            x, y, w, h = masks.bbox(rle)
            instance.frames[frame] = TubeletFrame(frame, rle, np.array([x, y, x + w, y + h], np.float32), item.score)
            truth.acted["given the true mask"] += 1

    def _unconfirmed_too_long(self, instance) -> bool:
        if "guard" not in self.ORACLES:
            return super()._unconfirmed_too_long(instance)
        limit = self.settings.max_unconfirmed
        if limit is None or instance.since_confirmed <= limit:
            return False
        truth = self.TRUTH
        if instance.unconfirmed and truth.on_own_object(instance, instance.unconfirmed[-1]):
            truth.acted["went on"] += 1
            return False
        truth.acted["stopped"] += 1
        for frame in instance.unconfirmed:
            if not truth.on_own_object(instance, frame):
                del instance.frames[frame]
        instance.unconfirmed = []
        return True


def _by_serial(instances, serial: int):
    return next(i for i in instances if i.serial == serial)


def oracle_names(text: str) -> frozenset[str]:
    """``--oracle``'s comma-separated names, checked: known, and at most one way of relinking."""
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(names - set(ORACLES))
    if unknown or not names:
        named = ", ".join(unknown) or repr(text)
        raise argparse.ArgumentTypeError(f"unknown oracle {named}; known: {', '.join(ORACLES)}")
    if {"relinks", "relinks-truth"} <= names:
        raise argparse.ArgumentTypeError("relinks and relinks-truth are two ways of relinking; name one")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_arguments(parser, [1234], [1234], 20, "instance,ipdt")
    parser.add_argument("--oracle", type=oracle_names, required=True,
                        help=f"one or more of {', '.join(ORACLES)}, comma-separated")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    OraclePropagator.ORACLES = args.oracle
    dual_trackers.Propagator = OraclePropagator  # the trackers build their propagator by this name

    @contextlib.contextmanager
    def with_truth(set_name: str, dataset: YouTubeVISDataset):
        OraclePropagator.TRUTH = truth = Truth(dataset)
        yield
        acted = ", ".join(f"{name} {count}" for name, count in sorted(truth.acted.items()))
        names = "+".join(name for name in ORACLES if name in args.oracle)
        print(f"{set_name}, {names} oracle, over the trackers: {acted}", file=sys.stderr, flush=True)

    compare_sets(args, load_config(None, args.overrides), around_set=with_truth)

if __name__ == "__main__":
    main()
