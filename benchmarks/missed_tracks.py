"""The tracks no tracker finds in their class, and why: lost to the class, or never followed.

For each set (generated and cached as ``tracker_validation.py`` does) and the
given trackers, a track is *found* by a tracker when one of its results
entries of the track's category reaches video IoU 0.5 with it. For the tracks
that no tracker finds, the script prints how many some tubelet of the last
tracker follows in another category (video IoU 0.5 or more, any category),
and for those, how often the detector proposed the object (its best
proposal at mask IoU 0.5 or more) and gave that proposal the track's
category; and of the others, never followed in any category, how many the
detector proposed in at least half of their frames (the tracker's share of
the loss; the rest is the detector's)::

    .venv/bin/python benchmarks/missed_tracks.py --work /tmp/val --seed 80 --hard-seed 81 --videos 40 \\
        [--trackers instance,ipdt] [--set calibration.other_classes=0]

With ``--set calibration.other_classes=0`` (one class per tubelet) this gives
the counts of README "Other classes".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import torch
from ablation import synthesize
from tracker_validation import run_set, seed_list

from tubelets import masks
from tubelets.config import load_config
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.metrics.vis_data import group_results, index_ground_truth
from tubelets.metrics.vis_iou import video_iou
from tubelets.metrics.vis_tracks import ground_truth_tracks, prediction_tracks
from tubelets.models.loading import load_detector


@dataclasses.dataclass
class Missed:
    """Counts over the tracks of one or more sets."""

    tracks: int = 0
    missed: int = 0  # by every tracker, in their category
    other_category: int = 0  # of the missed: followed by a tubelet of the last tracker in another category
    frames: int = 0  # of those tracks: frames where the track is present
    proposed: int = 0  # ... where the detector's best proposal has mask IoU >= 0.5 with it
    right_category: int = 0  # ... and that proposal has the track's category
    never_followed: int = 0  # of the missed: followed by no tubelet of the last tracker, in any category
    mostly_proposed: int = 0  # ... of which the detector proposed in at least half their frames

    def add(self, other: "Missed") -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def line(self, name: str) -> str:
        proposed = f"{100 * self.proposed / self.frames:.0f} %" if self.frames else "-"
        right = f"{100 * self.right_category / self.proposed:.0f} %" if self.proposed else "-"
        return (f"| {name} | {self.tracks} | {self.missed} | {self.other_category} | {proposed} | {right} "
                f"| {self.never_followed} | {self.mostly_proposed} |")


def best_ious(results: list, annotations: list, video: dict, any_category: bool) -> np.ndarray:
    """``[G]``: each track's best video IoU with the entries (of its category, or of any)."""
    if not results:
        return np.zeros(len(annotations))
    entries = prediction_tracks(results, video, "results")
    truth = ground_truth_tracks(annotations, video, "ground truth")
    if any_category:
        entries = dataclasses.replace(entries, category=np.zeros_like(entries.category))
        truth = dataclasses.replace(truth, category=np.zeros_like(truth.category))
    return video_iou(entries, truth, video["id"]).max(axis=0)


def count_set(gt: dict, results: dict[str, list], proposals: dict) -> Missed:
    """The counts of one set (``results``: {tracker: entries}, the last tracker's tubelets judged)."""
    index = index_ground_truth(gt)
    grouped = {name: group_results(entries, index) for name, entries in results.items()}
    last = list(results)[-1]
    counts = Missed()
    for video_id, annotations in index.annotations_by_video.items():
        video = index.videos[video_id]
        counts.tracks += len(annotations)
        found = np.zeros(len(annotations), bool)
        for by_video in grouped.values():
            found |= best_ious(by_video.get(video_id, []), annotations, video, any_category=False) >= 0.5
        elsewhere = best_ious(grouped[last].get(video_id, []), annotations, video, any_category=True) >= 0.5
        counts.missed += int((~found).sum())
        for track in np.flatnonzero(~found & elsewhere):
            counts.other_category += 1
            frames, proposed, right = proposal_counts(annotations[track], proposals[video_id])
            counts.frames, counts.proposed, counts.right_category = (
                counts.frames + frames, counts.proposed + proposed, counts.right_category + right)
        for track in np.flatnonzero(~found & ~elsewhere):
            frames, proposed, _ = proposal_counts(annotations[track], proposals[video_id])
            counts.never_followed += 1
            counts.mostly_proposed += int(2 * proposed >= frames)
    return counts


def proposal_counts(track: dict, frames: list) -> tuple[int, int, int]:
    """Frames where ``track`` is present; of those, proposed (best proposal at mask IoU 0.5); of those, rightly."""
    present = proposed = right = 0
    for detections, segmentation in zip(frames, track["segmentations"]):
        if not segmentation:
            continue
        present += 1
        if not len(detections):
            continue
        overlaps = masks.iou_matrix(detections.masks, [segmentation])[:, 0]
        best = int(overlaps.argmax())
        if overlaps[best] >= 0.5:
            proposed += 1
            right += int(detections.labels[best]) == int(track["category_id"])
    return present, proposed, right


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tubelets-validation"))
    parser.add_argument("--seed", type=seed_list, default=[80], help="seeds of the default-difficulty sets")
    parser.add_argument("--hard-seed", type=seed_list, default=[81], help="seeds of the --hard sets")
    parser.add_argument("--videos", type=int, default=40, help="videos per set")
    parser.add_argument("--trackers", default="instance,ipdt", help="the last one's tubelets are judged")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(None, args.overrides)
    checkpoint_id = load_detector(config)[1].checkpoint_id
    print("| set | tracks | missed by every tracker | of those, followed in another category "
          "| frames proposed | proposals of the right category | missed, never followed "
          "| of those, proposed in half their frames or more |")
    print("|---|---|---|---|---|---|---|---|")
    total = Missed()
    for seed, hard in [(seed, False) for seed in args.seed] + [(seed, True) for seed in args.hard_seed]:
        folder = synthesize(Path(args.work) / f"shapes-{seed}-{args.videos}{'-hard' if hard else ''}", args.videos,
                            seed, ["--hard"] if hard else [])
        results, _ = run_set(YouTubeVISDataset(str(folder)), config, folder, args.trackers.split(","))
        proposals = pickle.loads((folder / f"proposals-{checkpoint_id}.pkl").read_bytes())
        counts = count_set(json.loads((folder / "instances.json").read_text()), results, proposals)
        total.add(counts)
        print(counts.line(f"seed {seed}{' hard' if hard else ''}"), flush=True)
    print(total.line("all"))


if __name__ == "__main__":
    main()
