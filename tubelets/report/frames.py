"""Frame strips of a video: a few evenly spaced frames with the run's tubelets drawn (``tubelets.render``'s
drawing) and the same frames with the data set's ground truth, as small PNGs.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Mapping

import numpy as np
from PIL import Image, ImageDraw

from tubelets import masks
from tubelets.errors import TubeletsError
from tubelets.io.dataset import Track, YouTubeVISDataset
from tubelets.render import draw_frame, overlays_by_source_frame, palette

MAX_WIDTH = 256  # wider frames are scaled down to this: a strip of 6 stays under a page's width
COLOURS = 128  # PNG palette size: drawn frames of flat shapes lose nothing visible, and weigh a third


class FramesUnavailable(TubeletsError):
    """The data set's frames of a video cannot be read (moved, deleted, not on this machine)."""


@dataclasses.dataclass(frozen=True)
class StripFrame:
    """Frame ``t`` of a video: the run's tubelets and the ground truth drawn over it, as PNG bytes."""

    t: int
    run_png: bytes
    truth_png: bytes
    tubelets: int  # drawn in this frame
    truths: int


def strip_indices(length: int, count: int = 6) -> list[int]:
    """``count`` frame indices evenly spaced from the first frame to the last (fewer in a shorter video)."""
    spaced = np.linspace(0, max(0, length - 1), num=min(count, max(1, length))).round().astype(int)
    return sorted(set(spaced.tolist()))


def read_frames(dataset: YouTubeVISDataset, video: str, wanted: Iterable[int], source: str = "video") -> dict:
    """``{t: RGB frame}`` of the wanted frames; from the mp4 (``source``), or the JPEGs where it cannot be read."""
    wanted = set(wanted)
    for attempt in dict.fromkeys((source, "jpeg", "video")):
        try:
            found = {}
            for t, frame in dataset.iter_frames(video, source=attempt):
                if t in wanted:
                    found[t] = frame
                if len(found) == len(wanted):
                    return found
        except (TubeletsError, OSError):
            continue
    raise FramesUnavailable(f"cannot read the frames of video {video!r} from {dataset.root_url}")


def draw_truth(frame: np.ndarray, tracks: Iterable[tuple[int, Track]], t: int, names: Mapping[int, str],
               alpha: float = 0.5) -> np.ndarray:
    """``frame`` with each ground-truth track present in frame ``t`` drawn: mask, box and ``GT n class``."""
    present = [(n, track) for n, track in tracks if track.segmentations[t] is not None]
    canvas = frame.astype(np.float32)
    for n, track in present:
        mask = masks.decode(track.segmentations[t]).astype(bool)
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * np.asarray(palette(n), np.float32)
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    for n, track in present:
        x, y, w, h = track.bboxes[t]
        pen.rectangle([x, y, x + w, y + h], outline=palette(n))
        pen.text((x + 2, max(0, y - 11)), f"GT {n} {names.get(track.category_id, track.category_id)}",
                 fill=palette(n))
    return np.asarray(image)


def to_png(frame: np.ndarray, max_width: int = MAX_WIDTH) -> bytes:
    """A small PNG of an RGB frame: scaled down to ``max_width``, ``COLOURS`` colours."""
    image = Image.fromarray(frame)
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.quantize(COLOURS, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _fit(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``frame`` at the tubelets' mask size ``(height, width)`` (a run may have decoded it smaller)."""
    if size is None or frame.shape[:2] == size:
        return frame
    return np.asarray(Image.fromarray(frame).resize((size[1], size[0])))


def video_strip(dataset: YouTubeVISDataset, video: str, tubelet_rows: list[dict], names: Mapping[int, str],
                count: int = 6, source: str = "video") -> list[StripFrame]:
    """``count`` evenly spaced frames of ``video``, each drawn with the run's tubelets and with the ground truth."""
    record = dataset.video(video)
    indices = strip_indices(record.length, count)
    frames = read_frames(dataset, video, indices, source)
    overlays = overlays_by_source_frame(tubelet_rows)
    tracks = list(enumerate(dataset.tracks(record.id), start=1))
    strip = []
    for t in indices:
        drawn = overlays.get(t, [])
        size = (drawn[0][1]["height"], drawn[0][1]["width"]) if drawn else None
        run = draw_frame(_fit(frames[t], size), drawn)
        truth = draw_truth(frames[t], tracks, t, names)
        strip.append(StripFrame(t, to_png(run), to_png(truth), len(drawn),
                                sum(track.segmentations[t] is not None for _, track in tracks)))
    return strip
