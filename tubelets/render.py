"""Draw a run's tubelets over the frames of a video, because people would rather look than read.

Each tubelet gets a colour from a fixed palette (by tubelet id); its mask is
blended over the frame, its box outlined, and ``#id class score`` written at
the box's corner.
"""

from __future__ import annotations

import colorsys
import posixpath
import sys
from typing import Optional, TextIO

import numpy as np
import pyarrow.compute as pc
from PIL import Image, ImageDraw

from tubelets import masks, runs, tables
from tubelets.errors import DatasetError
from tubelets.io.video import iter_frames, probe


def palette(index: int) -> tuple[int, int, int]:
    """A bright colour per index; golden-ratio hue steps keep neighbours apart."""
    red, green, blue = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(red * 255), int(green * 255), int(blue * 255)


def _stem(url: str) -> str:
    """``gs://b/clips/cat.mp4`` -> ``cat``: a data set's video name matches its mp4."""
    return posixpath.splitext(posixpath.basename(url.rstrip("/")))[0]


def choose_run(output_url: str, run_id: Optional[str] = None, include_incomplete: bool = False,
               err: Optional[TextIO] = None) -> str:
    """The run to draw: ``run_id`` (any status) or the latest complete run (latest run with ``include_incomplete``).

    "Latest" is the greatest run id: default run ids start with the UTC time. The choice goes to ``err``
    (default stderr), with the newer runs passed over and why.
    """
    err = err or sys.stderr
    if run_id is not None:
        found = runs.list_runs(output_url)
        chosen = next((run for run in found if run.run_id == run_id), None)
        if chosen is None:
            latest = f"its latest runs: {', '.join(run.run_id for run in found[-5:])}" if found else "it holds no run"
            raise runs.RunNotFoundError(f"run {run_id} is not in {output_url}; {latest}")
        if not chosen.complete:
            print(f"tubelets: rendering {chosen.describe()}: its tubelets may be partial", file=err)
        return run_id
    run_ids, skipped = tables.select_output_runs(output_url, include_incomplete)
    if not run_ids:
        raise tables.NoRunsError(f"{output_url} holds no complete run ({len(skipped)} incomplete); "
                                 f"--include-incomplete renders the latest of them, --run-id a given one")
    latest = max(run_ids)
    newer = [run for run in skipped if run.run_id > latest]
    for line in tables.skipped_lines(newer):
        print(line, file=err)
    print(f"tubelets: rendering run {latest}, the latest{'' if include_incomplete else ' complete'} run "
          f"(--run-id picks another)", file=err)
    return latest


def video_tubelets(output_url: str, video: str, run_id: Optional[str] = None, include_incomplete: bool = False,
                   err: Optional[TextIO] = None) -> list[dict]:
    """The tubelet rows of ``video`` (its key or a URL ending in it) in one run (see :func:`choose_run`)."""
    run = choose_run(output_url, run_id, include_incomplete, err)
    table = tables.read_table(output_url, "tubelets", run)
    if table.num_rows == 0:
        raise DatasetError(f"run {run} in {output_url} has no tubelets")
    keys = set(table.column("video").to_pylist())
    matches = [k for k in keys if k == video or _stem(k) == _stem(video)]
    if not matches:
        raise DatasetError(f"run {run} has no tubelets for video {video!r}; "
                           f"it has {len(keys)} videos, e.g. {sorted(keys)[:3]}")
    table = table.filter(pc.equal(table.column("video"), matches[0]))
    return table.to_pylist()


def overlays_by_source_frame(rows: list[dict]) -> dict[int, list[tuple[dict, dict]]]:
    """``source frame -> [(tubelet row, frame entry)]`` for every frame a tubelet covers."""
    by_frame: dict[int, list] = {}
    for row in rows:
        for entry in row["frames"]:
            by_frame.setdefault(entry["source_frame"], []).append((row, entry))
    return by_frame


def draw_frame(frame: np.ndarray, overlays: list[tuple[dict, dict]], alpha: float = 0.5) -> np.ndarray:
    """``frame`` (RGB uint8 [H, W, 3], the masks' size) with each tubelet's mask, box and label drawn on it."""
    canvas = frame.astype(np.float32)
    for row, entry in overlays:
        mask = masks.decode({"size": [entry["height"], entry["width"]], "counts": entry["rle"]}).astype(bool)
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * np.asarray(palette(row["tubelet_id"]), np.float32)
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    for row, entry in overlays:
        colour = palette(row["tubelet_id"])
        x1, y1, x2, y2 = entry["box"]
        pen.rectangle([x1, y1, x2, y2], outline=colour)
        pen.text((x1 + 2, max(0, y1 - 11)), f"#{row['tubelet_id']} {row['category_name']} {row['score']:.2f}",
                 fill=colour)
    return np.asarray(image)


def render(output_url: str, video_url: str, out_path: str, run_id: Optional[str] = None,
           include_incomplete: bool = False) -> int:
    """Write ``out_path`` (mp4) with a run's tubelets drawn over ``video_url``; returns frames written.

    The run is ``run_id``, or the latest complete run of OUTPUT (latest run with ``include_incomplete``).
    """
    from tubelets.io.video_writer import write_mp4

    overlays = overlays_by_source_frame(video_tubelets(output_url, video_url, run_id, include_incomplete))
    size = next(iter(overlays.values()))[0][1] if overlays else None
    drawn = []
    for index, frame in iter_frames(video_url):
        if size is not None and (frame.shape[0], frame.shape[1]) != (size["height"], size["width"]):
            frame = np.asarray(Image.fromarray(frame).resize((size["width"], size["height"])))
        drawn.append(draw_frame(frame, overlays.get(index, [])))
    write_mp4(out_path, np.stack(drawn), probe(video_url).fps or 10.0)
    return len(drawn)
