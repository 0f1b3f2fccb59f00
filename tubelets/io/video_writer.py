"""Encoding RGB frames to an H.264 mp4 at any fsspec URL, with ffmpeg."""

from __future__ import annotations

import os
import tempfile

import ffmpeg
import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from tubelets.errors import TubeletsError
from tubelets.io.ffmpeg_binary import ffmpeg_binary

X264_CRF = 18  # visually near-lossless, so a data set's mp4 and JPEG copies of a frame agree closely


def write_mp4(url: str, frames: np.ndarray, fps: float) -> None:
    """Encode ``uint8 [T, H, W, 3]`` frames (even H and W) to an H.264 yuv420p mp4 at ``path``.

    ffmpeg writes to local files only, so for remote file systems it encodes to a
    temporary file that is then uploaded.
    """
    fs, path = fsspec.core.url_to_fs(url)
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        encode_mp4(frames, path, fps)
        return
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, "video.mp4")
        encode_mp4(frames, local, fps)
        fs.put_file(local, path)


def encode_mp4(frames: np.ndarray, local_path: str, fps: float) -> None:
    """Pipe raw RGB frames into ffmpeg/libx264 at a constant ``fps``."""
    length, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p video needs an even width and height, got {width}x{height}")
    stream = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps)
        .output(local_path, vcodec="libx264", pix_fmt="yuv420p", r=fps, crf=X264_CRF, preset="fast")
        .global_args("-nostdin", "-loglevel", "error")
        .overwrite_output()
    )
    try:
        raw = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
        stream.run(cmd=ffmpeg_binary(), input=raw, capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as error:
        detail = (error.stderr or b"").decode("utf-8", "replace").strip()[-500:]
        raise TubeletsError(f"ffmpeg could not encode {local_path!r} ({length} frames): {detail}") from error
