"""Where the ffmpeg and ffprobe executables are.

A system ``ffmpeg`` on PATH wins; otherwise the binary that the ``imageio-ffmpeg``
wheel ships is used, so ``pip install tubelets`` alone is enough to decode and
encode video. ``imageio-ffmpeg`` ships no ``ffprobe``: callers that want probe
facts must cope with ``ffprobe_binary()`` returning ``None``.
"""

from __future__ import annotations

import functools
import os
import shutil


@functools.lru_cache(maxsize=None)
def ffmpeg_binary() -> str:
    """Path of an ffmpeg executable (``TUBELETS_FFMPEG`` overrides the search)."""
    override = os.environ.get("TUBELETS_FFMPEG")
    if override:
        return override
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=None)
def ffprobe_binary() -> str | None:
    """Path of an ffprobe executable, or ``None`` when there is none."""
    override = os.environ.get("TUBELETS_FFPROBE")
    if override:
        return override
    return shutil.which("ffprobe")
