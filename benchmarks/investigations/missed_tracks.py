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

    .venv/bin/python benchmarks/investigations/missed_tracks.py --work /tmp/val --seed 80 --hard-seed 81 \\
        --videos 40 [--trackers instance,ipdt] [--set calibration.other_classes=0]

With ``--set calibration.other_classes=0`` (one class per tubelet) this gives
the counts of ``docs/tracker-record.md``, "Other classes".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from tubelets import masks
from tubelets.config import load_config
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.metrics.vis_data import group_results, index_ground_truth
from tubelets.metrics.vis_iou import video_iou
from tubelets.metrics.vis_tracks import ground_truth_tracks, prediction_tracks

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the maintained benchmarks this one runs
from ablation import separator  # noqa: E402
from shapes_vis import PRESET  # noqa: E402
from tracker_validation import add_set_arguments, run_set, validation_sets  # noqa: E402


HEADER = ("| set | tracks | missed by every tracker | of those, followed in another category "
          "| frames proposed | proposals of the right category | missed, never followed "
          "| of those, proposed in half their frames or more |")


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


def track_ious(results: list, annotations: list, video: dict) -> tuple[np.ndarray, np.ndarray]:
    """``[D, G]`` video IoU of each entry with each track (any categories) and ``bool [D, G]`` same category."""
    if not results:
        return np.zeros((0, len(annotations))), np.zeros((0, len(annotations)), bool)
    entries = prediction_tracks(results, video, "results")
    truth = ground_truth_tracks(annotations, video, "ground truth")
    same = np.equal.outer(entries.category, truth.category)
    entries = dataclasses.replace(entries, category=np.zeros_like(entries.category))
    truth = dataclasses.replace(truth, category=np.zeros_like(truth.category))
    return video_iou(entries, truth, video["id"]), same


def count_set(gt: dict, results: dict[str, list], proposals: dict) -> Missed:
    """The counts of one set (``results``: {tracker: entries}, the last tracker's tubelets judged)."""
    index = index_ground_truth(gt)
    grouped = {name: group_results(entries, index) for name, entries in results.items()}
    counts = Missed()
    for video_id, video_annotations in index.annotations_by_video.items():
        video = index.videos[video_id]
        counts.tracks += len(video_annotations)
        found = followed = np.zeros(len(video_annotations), bool)  # followed: by the last tracker, in any category
        for by_video in grouped.values():
            ious, same = track_ious(by_video.get(video_id, []), video_annotations, video)
            found = found | ((ious >= 0.5) & same).any(axis=0)
            followed = (ious >= 0.5).any(axis=0)
        counts.missed += int((~found).sum())
        for track in np.flatnonzero(~found):
            present, proposed, right = proposal_counts(video_annotations[track], proposals[video_id])
            if followed[track]:
                counts.other_category += 1
                counts.frames += present
                counts.proposed += proposed
                counts.right_category += right
            else:
                counts.never_followed += 1
                counts.mostly_proposed += int(2 * proposed >= present)
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
    add_set_arguments(parser, [80], [81], 40, "instance,ipdt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(PRESET, args.overrides)
    print(HEADER)
    print(separator(HEADER))
    total = Missed()
    for set_name, folder, _ in validation_sets(args):
        run = run_set(YouTubeVISDataset(str(folder)), config, folder, args.trackers.split(","))
        counts = count_set(json.loads((folder / "instances.json").read_text()), run.results, run.proposals)
        total.add(counts)
        print(counts.line(set_name), flush=True)
    print(total.line("all"))


if __name__ == "__main__":
    main()
