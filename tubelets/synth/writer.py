"""Writing a data set's files to any fsspec location: JSON and JPEG frames (mp4: ``tubelets.io.video_writer``)."""

from __future__ import annotations

import io
import json

import fsspec
import numpy as np
from PIL import Image

JPEG_QUALITY = 95
# 4:4:4 (no chroma subsampling): thin stripes and colour noise survive, at about 1.7x the bytes.
JPEG_SUBSAMPLING = 0


def write_json(fs: fsspec.AbstractFileSystem, path: str, payload: dict) -> None:
    """Write ``payload`` as compact UTF-8 JSON."""
    fs.pipe_file(path, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def write_jpegs(fs: fsspec.AbstractFileSystem, folder: str, frames: np.ndarray) -> list[str]:
    """Write ``uint8 [T, H, W, 3]`` frames as ``folder/00000.jpg``...; returns the paths."""
    fs.makedirs(folder, exist_ok=True)
    paths = []
    for index, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
        path = f"{folder}/{index:05d}.jpg"
        fs.pipe_file(path, buffer.getvalue())
        paths.append(path)
    return paths
