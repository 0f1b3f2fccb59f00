"""What the trackers could gain at all: each oracle puts the truth in place of one of their decisions.

Runs ``tracker_validation.py``'s sets and trackers (with its ``shapes-vis``
preset) with decisions of the ``instance``, ``pixel`` and ``ipdt``
propagation taken from the true tracks (``--oracle``), through
:mod:`tubelets.models.ipdt.oracle`:

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

Compare with ``tracker_validation.py`` on the same sets (the ``docs/tracker-record.md`` figures).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
from typing import Iterator, Sequence

import numpy as np
import torch
from shapes_vis import PRESET
from tracker_validation import add_set_arguments, compare_sets

from tubelets import masks
from tubelets.config import load_config
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.models.ipdt import oracle as oracles
from tubelets.models.ipdt.propagation import Instance
from tubelets.models.ipdt.relinking import RelinkRule, frame_gaps, stopped_recently
from tubelets.records import TubeletFrame, VideoProposals

ORACLES = ("fill-masks", "guard", "relinks", "relinks-truth")
MATCH_IOU = 0.5  # a seed or a fill is on a true track at this mask IoU or more


class Truth:
    """The set's true masks, ``{(video id, frame): {track id: RLE}}``, for the video being tracked."""

    def __init__(self, dataset: YouTubeVISDataset):
        self.masks: dict[tuple[int, int], dict[int, dict]] = {}
        for video in dataset.videos:
            for track in dataset.tracks(video.id):
                for frame, rle in enumerate(track.segmentations):
                    if rle is not None:
                        self.masks.setdefault((video.id, frame), {})[track.id] = rle
        self.video: int | None = None
        self._seed_tracks: dict[int, int | None] = {}  # instance serial -> the true track of its seed (this video)
        self.acted: collections.Counter = collections.Counter()  # what the oracle did, over the set

    def start_video(self, video_id: int) -> None:
        self.video, self._seed_tracks = video_id, {}

    def in_frame(self, frame: int) -> dict[int, dict]:
        return self.masks.get((self.video, frame), {})

    def track_of(self, instance: Instance) -> int | None:
        """The true track the instance's seed lies on, or None."""
        if instance.serial not in self._seed_tracks:
            self._seed_tracks[instance.serial] = self.best_track(instance.seed.mask, instance.seed_frame, MATCH_IOU)
        return self._seed_tracks[instance.serial]

    def best_track(self, rle: dict, frame: int, at_least: float) -> int | None:
        tracks = self.in_frame(frame)
        if not tracks:
            return None
        ids = list(tracks)
        ious = masks.iou_matrix([rle], [tracks[i] for i in ids])[0]
        return ids[int(ious.argmax())] if ious.max() >= at_least and ious.max() > 0 else None

    def on_different_tracks(self, first: Instance, second: Instance) -> bool:
        """Whether both seeds lie on true tracks, and not on the same one."""
        a, b = self.track_of(first), self.track_of(second)
        return a is not None and b is not None and a != b

    def on_own_object(self, instance: Instance, frame: int) -> bool:
        track = self.track_of(instance)
        return (track is not None and frame in instance.frames
                and self.best_track(instance.frames[frame].mask, frame, MATCH_IOU) == track)


class TruthOracle(oracles.Oracle):
    """The decisions named in ``names`` (of ``ORACLES``) taken from ``truth``; the others the tracker's own."""

    def __init__(self, names: frozenset[str], truth: Truth):
        self.names, self.truth = names, truth
        self.refused: set[tuple[int, int]] = set()  # a refused pair stays a candidate, so count it once per video

    def start_video(self, proposals: VideoProposals) -> None:
        self.truth.start_video(proposals.meta.video_id)
        self.refused = set()

    def kept_fill(self, instance: Instance, item: TubeletFrame) -> TubeletFrame:
        """``fill-masks``: the true mask the fill overlaps most, in the tubelet only."""
        if "fill-masks" not in self.names:
            return super().kept_fill(instance, item)
        truth = self.truth
        truth.acted["filled frames"] += 1
        track = truth.best_track(item.mask, item.frame, 0.0)
        if track is None:
            return item
        truth.acted["given the true mask"] += 1
        rle = truth.in_frame(item.frame)[track]
        x, y, w, h = masks.bbox(rle)
        return TubeletFrame(item.frame, rle, np.array([x, y, x + w, y + h], np.float32), item.score)

    def guard(self, instance: Instance) -> oracles.GuardDecision:
        """``guard``: go on while the latest fill is on the seed's object; else stop, dropping only the fills off it."""
        if "guard" not in self.names:
            return super().guard(instance)
        truth = self.truth
        if instance.unconfirmed and truth.on_own_object(instance, instance.unconfirmed[-1]):
            truth.acted["went on"] += 1
            return oracles.GuardDecision(stops=False)
        truth.acted["stopped"] += 1
        off_object = tuple(frame for frame in instance.unconfirmed if not truth.on_own_object(instance, frame))
        return oracles.GuardDecision(stops=True, dropped=off_object)

    def relinks(self, started: Sequence[Instance], stopped: Sequence[Instance], rule: RelinkRule) -> dict[int, int]:
        """``relinks``: the tracker's links but those across two true tracks, and the pairs on one true track in
        time; ``relinks-truth``: those pairs only."""
        if not self.names & {"relinks", "relinks-truth"}:
            return super().relinks(started, stopped, rule)
        links: dict[int, int] = {}
        if "relinks" in self.names:  # without the tracker's, it offers other pairs at every frame: nothing to count
            links = self._tracker_links_on_one_track(started, stopped, rule)
        return {**links, **self._links_by_truth(started, stopped, rule, links)}

    def _tracker_links_on_one_track(self, started: Sequence[Instance], stopped: Sequence[Instance],
                                    rule: RelinkRule) -> dict[int, int]:
        truth = self.truth
        own = rule.links(started, stopped)
        by_serial = {instance.serial: instance for instance in [*started, *stopped]}
        kept = {new: old for new, old in own.items() if not truth.on_different_tracks(by_serial[new], by_serial[old])}
        refused = set(own.items()) - set(kept.items()) - self.refused
        truth.acted["tracker's relinks refused"] += len(refused)
        self.refused |= refused
        return kept

    def _links_by_truth(self, started: Sequence[Instance], stopped: Sequence[Instance], rule: RelinkRule,
                        links: dict[int, int]) -> dict[int, int]:
        """Each started instance not in ``links`` continues the first free stopped one in time on its true track."""
        truth = self.truth
        added: dict[int, int] = {}
        used = set(links.values())
        in_time = stopped_recently(frame_gaps(started, stopped), rule.relink_frames).numpy()
        for s, new in enumerate(started):
            if new.serial in links or truth.track_of(new) is None:
                continue
            for o, old in enumerate(stopped):
                if old.serial not in used and in_time[s, o] and truth.track_of(old) == truth.track_of(new):
                    added[new.serial] = old.serial
                    used.add(old.serial)
                    truth.acted["relinks added"] += 1
                    break
        return added


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

    @contextlib.contextmanager
    def truth_deciding(set_name: str, dataset: YouTubeVISDataset) -> Iterator[None]:
        """The set's tracking with the oracle's decisions taken from its truth; then how often the oracle acted."""
        truth = Truth(dataset)
        with oracles.deciding(TruthOracle(args.oracle, truth)):
            yield
        acted = ", ".join(f"{name} {count}" for name, count in sorted(truth.acted.items()))
        names = "+".join(name for name in ORACLES if name in args.oracle)
        print(f"{set_name}, {names} oracle, over the trackers: {acted}", file=sys.stderr, flush=True)

    compare_sets(args, load_config(PRESET, args.overrides), around_set=truth_deciding)


if __name__ == "__main__":
    main()
