"""How far a run is: inputs done of all, frames/s, dead letters, time left, read from the run folder alone.

A run writes a file per finished video (``tubelets/``) and per failure
(``dead_letters/``) as it goes, and each tubelets file's footer holds the
video's decoded frame count; with the manifest (inputs, start) that is all
``tubelets status`` needs, on any runner: the run folder is the record, not the
process that runs it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Optional

import fsspec
import pyarrow.parquet as pq

from tubelets import runs
from tubelets.errors import TubeletsError

FOOTERS_READ = 500  # above this many finished videos, frames are estimated from a sample of their footers


class NoRunError(TubeletsError):
    """RUN_FOLDER holds no run manifest."""


@dataclasses.dataclass(frozen=True)
class RunProgress:
    """A run's progress; ``rate`` figures are over the current attempt (a resumed run's since it resumed)."""

    run_id: str
    status: str
    inputs: Optional[int]
    done: int
    failed: int
    frames: int  # decoded frames of the videos finished (estimated from a sample beyond FOOTERS_READ)
    done_before: int  # inputs an earlier attempt finished
    frames_before: int
    seconds: float  # of the current attempt, to its end or to now
    reason: str = ""

    @property
    def frames_per_second(self) -> float:
        return (self.frames - self.frames_before) / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_left(self) -> Optional[float]:
        """Time left at this attempt's pace of inputs; None when it cannot be told yet."""
        finished_now = self.done - self.done_before
        if self.inputs is None or finished_now <= 0 or self.done >= self.inputs or self.status != runs.RUNNING:
            return None
        return (self.inputs - self.done) * self.seconds / finished_now

    def line(self) -> str:
        """``run r: running, 12 of 20 inputs done (2 dead letters), 31.0 frames/s, about 1m20s left``."""
        of = f" of {self.inputs}" if self.inputs is not None else ""
        left = self.seconds_left
        parts = [f"run {self.run_id}: {self.status}", f"{self.done}{of} inputs done ({self.failed} dead letters)",
                 f"{self.frames_per_second:.1f} frames/s", f"{_duration(self.seconds)} elapsed"]
        if left is not None:
            parts.append(f"about {_duration(left)} left")
        if self.reason:
            parts.append(self.reason)
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def run_progress(output_url: str, run_id: str, now: Optional[dt.datetime] = None,
                 frame_cache: Optional[dict] = None) -> RunProgress:
    """The progress of run ``run_id`` under OUTPUT. ``frame_cache`` (file -> frames) saves footer reads."""
    manifest = runs.read_manifest(output_url, run_id)
    if manifest is None:
        raise NoRunError(f"{runs.run_url(output_url, run_id)} holds no run manifest: give OUTPUT/<run_id>")
    fs, done_files = _tubelet_files(output_url, run_id)
    failed = runs.inputs_with_files(output_url, run_id, "dead_letters")
    frames = _frames(fs, done_files, frame_cache if frame_cache is not None else {})
    started = _time(manifest.get("resumed_at") or manifest.get("started_at"))
    ended = _time(manifest.get("ended_at")) if manifest.get("status") != runs.RUNNING else None
    end = ended or now or dt.datetime.now(dt.timezone.utc)
    return RunProgress(
        run_id=run_id, status=str(manifest.get("status")), inputs=manifest.get("inputs"),
        done=len({runs.stem_of_file(path) for path in done_files} | failed), failed=len(failed), frames=frames,
        done_before=int(manifest.get("finished_before") or 0), frames_before=int(manifest.get("frames_before") or 0),
        seconds=max(0.0, (end - started).total_seconds()) if started else 0.0, reason=str(manifest.get("reason") or ""),
    )


def _tubelet_files(output_url: str, run_id: str) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    fs, path = fsspec.core.url_to_fs(f"{runs.run_url(output_url, run_id)}/tubelets")
    return fs, sorted(fs.glob(f"{path}/*.parquet"))


def _frames(fs: fsspec.AbstractFileSystem, paths: list[str], cache: dict) -> int:
    """Decoded frames of the finished videos: each file's footer, or a sample's mean times the count."""
    if not paths:
        return 0
    sample = paths if len(paths) <= FOOTERS_READ else random.Random(0).sample(paths, FOOTERS_READ)
    for path in sample:
        if path not in cache:
            cache[path] = _footer(fs, path)[0]
    return round(sum(cache[path] for path in sample) * len(paths) / len(sample))


def _footer(fs, path: str) -> tuple[int, int]:
    """``(decoded frames, tubelets)`` of one per-video file, from its footer alone."""
    with fs.open(path, "rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
    return int((metadata.metadata or {}).get(b"tubelets.video_frames", b"0")), metadata.num_rows


def _time(text: Optional[str]) -> Optional[dt.datetime]:
    return dt.datetime.fromisoformat(text) if text else None


def folder_progress(folder_url: str) -> list[RunProgress]:
    """The progress of the run ``folder_url`` is the folder of, or of every run under the OUTPUT it is."""
    if runs.is_run_folder(folder_url):
        parent, _, run_id = folder_url.rstrip("/").rpartition("/")
        return [run_progress(parent or ".", run_id)]
    found = [run for run in runs.list_runs(folder_url) if run.status != runs.NO_MANIFEST]
    if not found:
        raise NoRunError(f"{folder_url} is not a run folder and holds no run")
    return [run_progress(folder_url, run.run_id) for run in found]


@dataclasses.dataclass(frozen=True)
class FileCounts:
    """What a run's files tell of its work: videos with tubelets, their frames and tubelets, dead letters."""

    videos: int  # inputs with a tubelets file
    frames: int  # decoded frames of those videos (their files' footers)
    tubelets: int  # rows of those files
    dead_letters: int  # dead letter files (one per failure)


def count_files(output_url: str, run_id: str, skip: frozenset = frozenset()) -> FileCounts:
    """Count the run's per-video files, every footer read (not sampled); ``skip``: stems left out (a resumed
    run's inputs finished before, so that the counts are this attempt's, as a runner's counters are)."""
    fs, paths = _tubelet_files(output_url, run_id)
    paths = [path for path in paths if runs.stem_of_file(path) not in skip]
    footers = [_footer(fs, path) for path in paths]
    frames, tubelets = sum(f for f, _ in footers), sum(n for _, n in footers)
    dead_fs, dead_path = fsspec.core.url_to_fs(f"{runs.run_url(output_url, run_id)}/dead_letters")
    dead = [path for path in dead_fs.glob(f"{dead_path}/*.parquet") if runs.stem_of_file(path) not in skip]
    return FileCounts(videos=len(paths), frames=frames, tubelets=tubelets, dead_letters=len(dead))
