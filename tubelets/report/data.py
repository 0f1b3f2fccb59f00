"""What a report shows, read from a run folder: the manifest, the metrics, the stored matches, the dead letters
and the other runs of the same data set. No figure and no HTML here: plain values for ``sections``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import posixpath
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from tubelets import runs, tables
from tubelets.errors import TubeletsError
from tubelets.metrics import vis_bootstrap
from tubelets.metrics.vis import VideoMatches, VisMetrics, accumulate
from tubelets.metrics.vis_store import row_to_matches


class ReportError(TubeletsError):
    """A report that cannot be written as asked: RUN_FOLDER is not a complete run, the baseline is missing."""


@dataclasses.dataclass
class RunData:
    """One complete run: its manifest and the rows of its tables that a report shows."""

    output_url: str
    run_id: str
    manifest: dict
    metrics: list[dict]  # rows of the metrics table, every task
    matches: list[tuple[str, VideoMatches]]  # (video name, its stored matches), by video name
    dead_letters: list[dict]

    @property
    def tracker(self) -> str:
        return str(((self.manifest.get("config") or {}).get("tracker") or {}).get("name", ""))

    @property
    def task(self) -> str:
        return runs.run_task(self.manifest)

    @property
    def overall(self) -> dict | None:
        """The run's overall VIS metrics row, or None (a segment or VOS run)."""
        return next((row for row in self.metrics if row["task"] == "vis" and row["scope"] == "overall"), None)

    @property
    def categories(self) -> list[dict]:
        """VIS metrics rows of the categories with ground truth, by category id."""
        rows = [row for row in self.metrics if row["task"] == "vis" and row["scope"] == "category"]
        return sorted(rows, key=lambda row: row["category_id"])

    @functools.cached_property
    def accumulated(self) -> VisMetrics | None:
        """The run's metrics from its stored matches (precision-recall curves), or None without matches."""
        return accumulate([m for _, m in self.matches]) if self.matches else None


def split_run_folder(run_folder: str) -> tuple[str, str]:
    """``OUTPUT/<run_id>`` -> ``(OUTPUT, run_id)``; a bare ``run_id`` is a run of the current folder."""
    output_url, _, run_id = run_folder.rstrip("/").rpartition("/")
    if not run_id:
        raise ReportError(f"{run_folder!r} is not a run folder: give OUTPUT/<run_id>")
    return output_url or ".", run_id


def load_run(output_url: str, run_id: str, what: str = "run") -> RunData:
    """The complete run ``run_id`` of OUTPUT; a :class:`ReportError` where it is missing or not complete."""
    manifest = runs.read_manifest(output_url, runs.check_run_id(run_id))
    if manifest is None:
        raise ReportError(_missing(output_url, run_id, what))
    if manifest.get("status") != runs.COMPLETE:
        info = runs.RunInfo.from_manifest(run_id, manifest)
        raise ReportError(f"{what} {info.describe()}: a report needs a complete run"
                          + (f"; {manifest['resume']}" if manifest.get("resume") else ""))
    rows = {name: tables.read_table(output_url, name, run_id).to_pylist()
            for name in ("metrics", "video_matches", "dead_letters")}
    matches = sorted((row["video"], row_to_matches(row)) for row in rows["video_matches"])
    return RunData(output_url, run_id, manifest, rows["metrics"], [(v, m) for v, m in matches], rows["dead_letters"])


def _missing(output_url: str, run_id: str, what: str) -> str:
    found = [run.run_id for run in runs.list_runs(output_url) if run.complete]
    others = f"its complete runs: {', '.join(found[-8:])}" if found else "it holds no complete run"
    return f"{what} {run_id} is not in {output_url} (no {run_id}/manifest.json); {others}"


@dataclasses.dataclass(frozen=True)
class VideoRow:
    """One video's AP in the run (None without ground truth) and in the baseline (None: not there, no AP)."""

    video: str
    ap: float | None
    num_gt: int
    num_predictions: int
    baseline_ap: float | None = None

    @property
    def change(self) -> float | None:
        return None if self.ap is None or self.baseline_ap is None else self.ap - self.baseline_ap


def video_ap(matches: VideoMatches) -> float | None:
    """AP of one video's matches accumulated alone; None where the video has no ground truth to score."""
    value = vis_bootstrap.video_ap(matches)
    return None if math.isnan(value) else value


def video_rows(run: RunData, baseline: RunData | None = None) -> list[VideoRow]:
    """Every scored video of the run, worst first: by the change against the baseline, else by AP.

    Videos without a number to sort by (no ground truth, not in the baseline) come last, by name.
    """
    before = {video: video_ap(m) for video, m in baseline.matches} if baseline else {}
    found = [VideoRow(video, video_ap(m), m.num_gt, m.num_predictions, before.get(video)) for video, m in run.matches]

    def key(row: VideoRow):
        value = row.change if baseline else row.ap
        return (value is None, value if value is not None else 0.0, row.video)

    return sorted(found, key=key)


def dead_videos(run: RunData) -> set[str]:
    """Names of the videos that went to dead letters: a data set's video ``v`` is the input ``.../videos/v.mp4``."""
    return {posixpath.splitext(posixpath.basename(row["input"].rstrip("/")))[0] for row in run.dead_letters}


@dataclasses.dataclass(frozen=True)
class DeadLetterGroup:
    error_type: str
    count: int
    stages: str
    example_input: str
    example_message: str


def dead_letter_groups(rows: Iterable[dict]) -> list[DeadLetterGroup]:
    """Dead letters by reason (error type), most frequent first, each with its first input as an example."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda row: row["input"]):
        grouped[row["error_type"]].append(row)
    groups = [DeadLetterGroup(kind, len(found), ", ".join(sorted({row["stage"] for row in found})),
                              found[0]["input"], found[0]["message"]) for kind, found in grouped.items()]
    return sorted(groups, key=lambda group: (-group.count, group.error_type))


@dataclasses.dataclass(frozen=True)
class TrendPoint:
    run_id: str
    started_at: dt.datetime
    tracker: str
    ap: float


def trend_points(output_url: str, dataset_digest: str) -> list[TrendPoint]:
    """Overall AP of every complete VIS run of OUTPUT that scored the same data set, by start time."""
    points = []
    for info in runs.list_runs(output_url):
        manifest = runs.read_manifest(output_url, info.run_id) if info.complete else None
        if not manifest or manifest.get("dataset_digest") != dataset_digest:
            continue
        rows = tables.read_table(output_url, "metrics", info.run_id).to_pylist()
        overall = next((r for r in rows if r["task"] == "vis" and r["scope"] == "overall"), None)
        started = parse_time(manifest.get("started_at"))
        if overall is not None and overall["AP"] is not None and started is not None:
            tracker = str(((manifest.get("config") or {}).get("tracker") or {}).get("name", ""))
            points.append(TrendPoint(info.run_id, started, tracker, float(overall["AP"])))
    return sorted(points, key=lambda point: (point.started_at, point.run_id))


def parse_time(value: Any) -> dt.datetime | None:
    """A manifest's ISO time, or None where it has none."""
    try:
        return dt.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def duration_seconds(manifest: dict) -> float | None:
    """Seconds from the run's start to its end (a resumed run: from its first start), or None."""
    started, ended = parse_time(manifest.get("started_at")), parse_time(manifest.get("ended_at"))
    return (ended - started).total_seconds() if started and ended else None


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"tracker.iou.max_age": 5, ...}``."""
    if not isinstance(config, dict):
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return {key.rstrip("."): value for key, value in flat.items()}


def config_differences(run: dict, baseline: dict) -> list[tuple[str, Any, Any]]:
    """``(key, run's value, baseline's value)`` for each config key that differs (the run id aside)."""
    mine, theirs = flatten(run.get("config") or {}), flatten(baseline.get("config") or {})
    missing = "(not set)"
    return [(key, mine.get(key, missing), theirs.get(key, missing)) for key in sorted(mine.keys() | theirs.keys())
            if key != "run.run_id" and mine.get(key, missing) != theirs.get(key, missing)]
