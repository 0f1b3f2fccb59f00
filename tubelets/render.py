"""Draw a run's tubelets over the frames of a video, because people would rather look than read.

Each tubelet gets a colour from a fixed palette (by tubelet id); its mask is
blended over the frame, its box outlined, and ``#id class score`` written at
the box's corner.
"""

from __future__ import annotations

import colorsys
import posixpath
from typing import Optional

import numpy as np
import pyarrow.compute as pc
from PIL import Image, ImageDraw

from tubelets import masks, tables
from tubelets.errors import DatasetError
from tubelets.io.video import iter_frames, probe


def palette(index: int) -> tuple[int, int, int]:
    """A bright colour per index; golden-ratio hue steps keep neighbours apart."""
    red, green, blue = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(red * 255), int(green * 255), int(blue * 255)


def _stem(url: str) -> str:
    """``gs://b/clips/cat.mp4`` -> ``cat``: a data set's video name matches its mp4."""
    return posixpath.splitext(posixpath.basename(url.rstrip("/")))[0]


def video_tubelets(output_url: str, video: str, run_id: Optional[str] = None) -> list[dict]:
    """The tubelet rows of ``video`` (its key or a URL ending in it) in one run (default: the latest)."""
    table = tables.read_table(output_url, "tubelets", run_id)
    if table.num_rows == 0:
        raise DatasetError(f"no tubelets under {output_url}" + (f" for run {run_id}" if run_id else ""))
    run = run_id or max(table.column("run_id").to_pylist())
    table = table.filter(pc.equal(table.column("run_id"), run))
    keys = set(table.column("video").to_pylist())
    matches = [k for k in keys if k == video or _stem(k) == _stem(video)]
    if not matches:
        raise DatasetError(f"run {run} has no tubelets for video {video!r}; it has {len(keys)} videos, e.g. {sorted(keys)[:3]}")
    return [row for row in table.to_pylist() if row["video"] == matches[0]]


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
        pen.text((x1 + 2, max(0, y1 - 11)), f"#{row['tubelet_id']} {row['category_name']} {row['score']:.2f}", fill=colour)
    return np.asarray(image)


def render(output_url: str, video_url: str, out_path: str, run_id: Optional[str] = None) -> int:
    """Write ``out_path`` (mp4) with the run's tubelets drawn over ``video_url``; returns frames written."""
    from tubelets.io.video_writer import write_mp4

    overlays = overlays_by_source_frame(video_tubelets(output_url, video_url, run_id))
    size = next(iter(overlays.values()))[0][1] if overlays else None
    drawn = []
    for index, frame in iter_frames(video_url):
        if size is not None and (frame.shape[0], frame.shape[1]) != (size["height"], size["width"]):
            frame = np.asarray(Image.fromarray(frame).resize((size["width"], size["height"])))
        drawn.append(draw_frame(frame, overlays.get(index, [])))
    write_mp4(out_path, np.stack(drawn), probe(video_url).fps or 10.0)
    return len(drawn)
