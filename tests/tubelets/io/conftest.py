"""Tiny videos and a tiny YouTube-VIS data set, generated with ffmpeg and numpy.

The *pattern* video makes frame content checkable after lossy coding: frame t
is flat gray at ``level(t)`` with a white block in its top-left quadrant, so a
decoded frame tells its own source index and its orientation.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tubelets import masks
from tubelets.io.ffmpeg_binary import ffmpeg_binary

PATTERN_SIZE = (48, 64)  # (height, width)
PATTERN_FPS = 10
PATTERN_FRAMES = 24


def level(t: int) -> int:
    """Gray level of pattern frame t (steps of 8, far above coding error)."""
    return 20 + 8 * t


def frame_index_of(frame: np.ndarray) -> int:
    """Source index of a decoded pattern frame, read from its bottom-right quadrant."""
    height, width = frame.shape[:2]
    value = float(frame[height * 3 // 4, width * 3 // 4].mean())
    return int(round((value - 20) / 8))


def pattern_frames(n: int = PATTERN_FRAMES, size: tuple[int, int] = PATTERN_SIZE) -> np.ndarray:
    """uint8 ``[n, H, W, 3]``: gray ``level(t)`` with a white top-left block."""
    height, width = size
    frames = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        frames[t] = level(t)
        frames[t, : height // 2, : width // 2] = 255
    return frames


def run_ffmpeg(*args: str, stdin: bytes | None = None) -> None:
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *args],
        input=stdin, check=True, stdout=subprocess.DEVNULL,
    )


def encode_frames(frames: np.ndarray, path: Path, fps: int = PATTERN_FPS, *extra: str) -> Path:
    """Encode uint8 ``[T, H, W, 3]`` RGB frames to an H.264 mp4 (near-lossless)."""
    _, height, width, _ = frames.shape
    run_ffmpeg(
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:",
        "-c:v", "libx264", "-crf", "4", "-pix_fmt", "yuv420p", *extra, str(path),
        stdin=np.ascontiguousarray(frames).tobytes(),
    )
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def testsrc_video(media_dir) -> Path:
    """64x48, 10 fps, 12 frames of ffmpeg's test pattern."""
    path = media_dir / "testsrc.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "12", "-pix_fmt", "yuv420p", str(path))
    return path


@pytest.fixture(scope="session")
def pattern_video(media_dir) -> Path:
    """The pattern video: 64x48, 10 fps, 24 frames, moov box at the end."""
    return encode_frames(pattern_frames(), media_dir / "pattern.mp4")


@pytest.fixture(scope="session")
def faststart_video(media_dir) -> Path:
    """The pattern video with its moov box first (``-movflags +faststart``)."""
    return encode_frames(pattern_frames(), media_dir / "pattern_faststart.mp4", PATTERN_FPS, "-movflags", "+faststart")


@pytest.fixture(scope="session")
def rotated_videos(pattern_video, media_dir):
    """display_rotation (counter-clockwise) -> remuxed file, one per angle."""
    out = {}
    for ccw in (90, 180, 270):
        out[ccw] = media_dir / f"rotated_{ccw}.mp4"
        run_ffmpeg("-display_rotation", str(ccw), "-i", str(pattern_video), "-c", "copy", str(out[ccw]))
    return out


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE of a binary ``(H, W)`` mask: column-major runs, zeros first."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0] + runs
    return {"size": list(mask.shape), "counts": runs}


VIS_SIZE = (24, 32)  # (height, width)
VIS_LENGTHS = {"vid_a": 3, "vid_b": 4}


def vis_mask(t: int, shift: int) -> np.ndarray:
    """Ground-truth mask of a test track: a 6x8 box moving right by 2 pixels a frame."""
    mask = np.zeros(VIS_SIZE, np.uint8)
    mask[4 + shift : 10 + shift, 2 + 2 * t : 10 + 2 * t] = 1
    return mask


def vis_color(video_index: int, t: int) -> tuple[int, int, int]:
    return (40 + 60 * video_index, 30 * t + 20, 200 - 40 * t)


def make_vis_dataset(root: Path, with_annotations: bool = True) -> Path:
    """A two-video YouTube-VIS folder: JPEG frames, mp4 copies and ``instances.json``.

    vid_a (id 1, 3 frames): track 10 (cat 1, uncompressed RLE, absent in frame 2).
    vid_b (id 2, 4 frames): track 11 (cat 2, compressed RLE), track 12 (cat 1).
    """
    height, width = VIS_SIZE
    videos = []
    for v, (name, length) in enumerate(VIS_LENGTHS.items()):
        (root / "JPEGImages" / name).mkdir(parents=True)
        frames = np.empty((length, height, width, 3), np.uint8)
        for t in range(length):
            frames[t] = vis_color(v, t)
            Image.fromarray(frames[t]).save(root / "JPEGImages" / name / f"{t:05d}.jpg", quality=95)
        (root / "videos").mkdir(exist_ok=True)
        encode_frames(frames, root / "videos" / f"{name}.mp4")
        file_names = [f"{name}/{t:05d}.jpg" for t in range(length)]
        videos.append({"id": v + 1, "width": width, "height": height, "length": length, "file_names": file_names})
    data = {"videos": videos, "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}]}
    if with_annotations:
        data["annotations"] = [
            {"id": 10, "video_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentations": [uncompressed_rle(vis_mask(0, 0)), uncompressed_rle(vis_mask(1, 0)), None]},
            {"id": 11, "video_id": 2, "category_id": 2, "iscrowd": 0,
             "segmentations": [masks.encode(vis_mask(t, 8)) for t in range(4)]},
            {"id": 12, "video_id": 2, "category_id": 1, "iscrowd": 0,
             "segmentations": [masks.encode(vis_mask(t, 0)) for t in range(4)]},
        ]
    (root / "instances.json").write_text(json.dumps(data))
    return root


@pytest.fixture(scope="session")
def vis_root(tmp_path_factory) -> Path:
    """A read-only shared YouTube-VIS folder (copy it before changing anything)."""
    return make_vis_dataset(tmp_path_factory.mktemp("vis"))


@pytest.fixture(scope="session")
def media():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    return SimpleNamespace(
        level=level, frame_index_of=frame_index_of, pattern_frames=pattern_frames, run_ffmpeg=run_ffmpeg,
        encode_frames=encode_frames, uncompressed_rle=uncompressed_rle, vis_mask=vis_mask, vis_color=vis_color,
        make_vis_dataset=make_vis_dataset, PATTERN_SIZE=PATTERN_SIZE, PATTERN_FPS=PATTERN_FPS,
        PATTERN_FRAMES=PATTERN_FRAMES, VIS_SIZE=VIS_SIZE, VIS_LENGTHS=VIS_LENGTHS,
    )
