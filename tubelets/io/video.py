"""Decode videos from any fsspec URL into RGB frames, streaming from ffmpeg.

Frames come out of an ffmpeg ``rawvideo``/``rgb24`` pipe one at a time, so a
long video is never held whole in memory (``read_frames`` collects them when
you want that). ``iter_frames`` reads the pipe in a background thread, a few
frames ahead of its caller, so that ffmpeg decodes while the caller works.
ffmpeg applies the container's rotation (frames come out upright), picks the
frames (``select`` filter, so skipped frames are never converted or copied)
and resizes them.

Frame indices are *source* indices: the position of the frame in the decoded
stream, counting from 0, whatever was skipped. ``stride`` and ``fps`` choose
frames by index with the same integer rule in Python and in ffmpeg's
expression, so the reported indices are exactly the frames delivered.

Nothing here opens a resource at import or construction time; all functions
are plain and picklable, for use inside Beam ``DoFn``s. Needs ffmpeg 5.1 or
newer (``-fps_mode``); the ``imageio-ffmpeg`` binary is newer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import queue
import subprocess
import tempfile
import threading
from fractions import Fraction
from typing import IO, Iterator

import ffmpeg
import numpy as np

from tubelets.errors import VideoDecodeError
from tubelets.io.ffmpeg_binary import ffmpeg_binary
from tubelets.io.files import local_path
from tubelets.io.probe import VideoInfo, check_file, ffmpeg_input_name, last_lines, probe, probe_local

__all__ = ["VideoInfo", "DecodedVideo", "probe", "iter_frames", "read_frames", "output_size"]

# Frames that iter_frames's reader thread keeps ready ahead of its caller. ffmpeg's pipe alone holds 64 KiB on
# Linux, less than one frame (640x360 RGB is 691 KB), so without the thread decoding and the caller's work take
# turns. A bigger pipe (fcntl F_SETPIPE_SZ) is no substitute: 1 MiB at most unprivileged, less than a 1280x720
# frame, and it gained nothing measurable. With a caller of 6.7 ms a frame (steady or jittered), 1, 2, 4 and 8
# frames ahead gave the same rates within noise (2 shared cores); 4 leaves room for a slower key frame or
# detector pass at 11 MB for 1280x720 frames. benchmarks/decode_bench.py measures what reading ahead gains.
FRAMES_AHEAD = 4
# ... and never more bytes than this: the 4 frames at 1280x720, but 2 at 1920x1080 and 1 at 4K.
BYTES_AHEAD = 16 * 2**20
# Messages of a decoder that ran out of data: with fewer frames than probed they mean "cut off".
_DECODER_ERRORS = ("partial file", "corrupt", "Invalid NAL unit", "Decoding error", "error while decoding")


@dataclasses.dataclass(frozen=True)
class DecodedVideo:
    """A decoded clip.

    ``frames``: uint8 ``[T, H, W, 3]`` RGB, upright; ``frame_indices``: int64 ``[T]``
    source frame index of each frame; ``info``: probe facts of the source
    (``info.width``/``height`` is the source display size, before ``max_size``).
    """

    frames: np.ndarray
    frame_indices: np.ndarray
    info: VideoInfo


@dataclasses.dataclass(frozen=True)
class _Selection:
    """Which source frames to keep: ``start <= n < end``, every ``stride``-th,
    and at most ``target_fps`` (frame ``n_k = floor(k * source_fps / target_fps)``
    for output frame k, counted from ``start``)."""

    start: int
    end: int
    stride: int = 1
    rate_ratio: Fraction | None = None  # source_fps / target_fps, only when > 1

    def keeps(self, n: int) -> bool:
        offset = n - self.start
        if not (self.start <= n < self.end) or offset % self.stride:
            return False
        if self.rate_ratio is None:
            return True
        # Some k has n_k == n  <=>  (-offset * q) mod p < q  for ratio p/q (exact integers).
        p, q = self.rate_ratio.numerator, self.rate_ratio.denominator
        return (-offset * q) % p < q

    def indices(self) -> list[int]:
        return [n for n in range(self.start, self.end) if self.keeps(n)]

    def ffmpeg_expression(self) -> str:
        """The same rule as ``keeps`` for ffmpeg's ``select`` filter (``n`` = frame index)."""
        terms = [f"between(n,{self.start},{self.end - 1})"]
        if self.stride > 1:
            terms.append(f"not(mod(n-{self.start},{self.stride}))")
        if self.rate_ratio is not None:
            p, q = self.rate_ratio.numerator, self.rate_ratio.denominator
            terms.append(f"lt(mod({p}-mod((n-{self.start})*{q},{p}),{p}),{q})")
        return "*".join(terms)


def output_size(info: VideoInfo, max_size: int | None) -> tuple[int, int]:
    """``(width, height)`` of the frames delivered for ``max_size``.

    Unchanged when the longer side already fits; otherwise scaled keeping the
    aspect ratio so the longer side is at most ``max_size``, both sides even.
    """
    width, height = info.width, info.height
    if max_size is None or max(width, height) <= max_size:
        return width, height
    longer = max_size - max_size % 2
    scale = longer / max(width, height)
    shorter = max(2, int(round(min(width, height) * scale / 2)) * 2)
    return (longer, shorter) if width >= height else (shorter, longer)


def iter_frames(
    url: str,
    *,
    stride: int = 1,
    fps: float | None = None,
    max_size: int | None = None,
    start: int = 0,
    end: int | None = None,
    read_ahead: bool = True,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(source_frame_index, frame)`` with ``frame`` RGB uint8 ``(H, W, 3)``, upright.

    ``stride`` keeps every k-th frame from ``start``; ``fps`` instead keeps the
    frames shown at times ``k / fps`` (never more than the source has: a target
    above the source rate keeps every frame); ``start``/``end`` bound source
    indices (end exclusive); ``max_size`` caps the longer side (see ``output_size``).
    ``read_ahead``: a background thread reads up to ``FRAMES_AHEAD`` frames
    (``BYTES_AHEAD`` bytes) ahead, so ffmpeg decodes while the caller works; False
    reads in the caller's thread (the same frames, decoded in turn with the work).
    Raises ``ValueError`` at once for bad arguments and ``VideoDecodeError``
    while iterating for bad input.
    """
    _check_arguments(stride, fps, max_size, start, end)
    return _stream_frames(url, stride, fps, max_size, start, end, read_ahead)


def read_frames(
    url: str,
    *,
    stride: int = 1,
    fps: float | None = None,
    max_size: int | None = None,
    start: int = 0,
    end: int | None = None,
) -> DecodedVideo:
    """All frames that ``iter_frames`` yields with the same arguments, as one ``DecodedVideo``."""
    _check_arguments(stride, fps, max_size, start, end)
    with _probed(url) as (path, info):
        plan = _plan(info, stride, fps, max_size, start, end)
        width, height = plan.size
        # Decoded straight into the result: no per-frame arrays to stack afterwards.
        frames = np.empty((len(plan.indices), height, width, 3), np.uint8)
        # Read in this thread: there is no work between frames to decode during.
        for _ in _decode_local(url, path, plan, iter(frames), ahead=0):
            pass
    return DecodedVideo(frames, np.array(plan.indices, dtype=np.int64), info)


def _check_arguments(stride, fps, max_size, start, end) -> None:
    if not isinstance(stride, numbers.Integral) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    if fps is not None and stride != 1:
        raise ValueError("give either stride or fps, not both")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    if max_size is not None and max_size < 2:
        raise ValueError(f"max_size must be at least 2, got {max_size!r}")
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"need 0 <= start <= end, got start={start!r}, end={end!r}")


@contextlib.contextmanager
def _probed(url: str) -> Iterator[tuple[str, VideoInfo]]:
    """A local path with the content of ``url`` and its probe facts."""
    check_file(url)
    with local_path(url) as path:
        yield path, probe_local(url, path)


def _stream_frames(url, stride, fps, max_size, start, end, read_ahead) -> Iterator[tuple[int, np.ndarray]]:
    with _probed(url) as (path, info):
        plan = _plan(info, stride, fps, max_size, start, end)
        width, height = plan.size
        fresh_arrays = (np.empty((height, width, 3), np.uint8) for _ in plan.indices)
        ahead = _frames_ahead(width * height * 3) if read_ahead else 0
        yield from _decode_local(url, path, plan, fresh_arrays, ahead)


def _frames_ahead(frame_bytes: int) -> int:
    """``FRAMES_AHEAD``, fewer where that many frames would pass ``BYTES_AHEAD``, and at least one."""
    return max(1, min(FRAMES_AHEAD, BYTES_AHEAD // frame_bytes))


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What to ask ffmpeg for: source ``indices`` to deliver, the ``select`` expression
    that picks them (None: every frame), output ``size`` (width, height) and whether
    that is the source size."""

    indices: list[int]
    select: str | None
    size: tuple[int, int]
    resize: bool


def _plan(info: VideoInfo, stride: int, fps: float | None, max_size, start: int, end: int | None) -> _Plan:
    end = info.frame_count if end is None else min(end, info.frame_count)
    ratio = None
    if fps is not None and info.fps > 0:
        # Both rates as small fractions: 29.97 -> 2997/100, 30000/1001 -> 30000/1001.
        source, target = (Fraction(r).limit_denominator(1001) for r in (info.fps, fps))
        ratio = source / target if source > target else None
    selection = _Selection(int(start), int(max(start, end)), int(stride), ratio)
    indices = selection.indices()
    select = selection.ffmpeg_expression() if len(indices) < info.frame_count else None
    size = output_size(info, max_size)
    return _Plan(indices, select, size, size != (info.width, info.height))


def _decode_local(url: str, path: str, plan: _Plan, buffers: Iterator[np.ndarray], ahead: int):
    """Decode ``path`` as planned, filling the arrays of ``buffers``; yields ``(index, array)``.

    ``ahead`` > 0: filled by a background thread, up to that many frames ahead (0: in this thread)."""
    if not plan.indices:
        return
    stream = ffmpeg.input(ffmpeg_input_name(path))["v:0"]
    if plan.select:
        stream = stream.filter("select", plan.select)
    if plan.resize:
        stream = stream.filter("scale", *plan.size, flags="area")
    # passthrough: never duplicate frames to fill the gaps that select leaves.
    output = stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough",
                           **{"frames:v": len(plan.indices)})
    args = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-v", "error", *output.get_args()]
    yield from _run_pipe(url, args, plan.indices, buffers, ahead)


def _run_pipe(url: str, args: list[str], indices: list[int], buffers: Iterator[np.ndarray], ahead: int):
    # stderr goes to a file: a full stderr pipe could block ffmpeg while we wait on stdout.
    with tempfile.TemporaryFile() as stderr_file:
        # bufsize=0: frames are read straight into their arrays, with no extra buffer copy.
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file, bufsize=0
        )
        frames = _read_pipe(process.stdout, indices, buffers)
        if ahead:
            frames = _read_ahead(frames, ahead)
        delivered = 0
        try:
            for index, frame in frames:
                delivered += 1
                yield index, frame
            returncode = process.wait()
        finally:
            if process.poll() is None:  # the consumer stopped early
                process.kill()
                process.wait()
            frames.close()  # after the kill: a reader thread waiting on the pipe gets its end, and ends
            process.stdout.close()
        if delivered < len(indices) or returncode != 0:
            stderr_file.seek(0)
            stderr = stderr_file.read().decode("utf-8", errors="replace")
            raise _decode_failure(url, stderr, delivered, len(indices))


def _read_pipe(stream: IO[bytes], indices: list[int], buffers: Iterator[np.ndarray]):
    """Yield ``(index, array)``, each array of ``buffers`` filled from ``stream``, until the stream ends."""
    for index, frame in zip(indices, buffers):
        if not _read_exact(stream, memoryview(frame).cast("B")):
            return
        yield index, frame


@dataclasses.dataclass(frozen=True)
class _Raised:
    """What the reader thread raised, passed to the caller's thread to be raised there."""

    error: BaseException


_END = object()  # the reader thread's last item when its input ended


def _read_ahead(items: Iterator, count: int) -> Iterator:
    """Yield the items of ``items``, taken from it by a background thread up to ``count`` ahead.

    What the thread raises is raised here. Closing this generator ends the thread as soon as its
    ``next(items)`` returns (so first make that return: ``_run_pipe`` kills ffmpeg first).
    """
    ready: queue.Queue = queue.Queue(maxsize=count)
    stop = threading.Event()
    thread = threading.Thread(target=_fill, args=(items, ready, stop), name="tubelets-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        # Make room: the thread puts at most one more item after stop is set, and must not block on it.
        with contextlib.suppress(queue.Empty):
            while True:
                ready.get_nowait()
        thread.join()


def _fill(items: Iterator, ready: queue.Queue, stop: threading.Event) -> None:
    """The reader thread: put each item of ``items`` on ``ready``, then ``_END`` or what it raised."""
    try:
        for item in items:
            if stop.is_set():
                return
            ready.put(item)
        last = _END
    except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
        last = _Raised(error)
    if not stop.is_set():
        ready.put(last)


def _read_exact(stream: IO[bytes], buffer: memoryview) -> bool:
    """Fill ``buffer`` from ``stream``; False if the stream ends first."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])
        if not count:
            return False
        filled += count
    return True


def _decode_failure(url: str, stderr: str, delivered: int, expected: int) -> VideoDecodeError:
    detail = f"decoded {delivered} of {expected} frames"
    tail = last_lines(stderr)
    if tail:
        detail += f"; ffmpeg: {tail}"
    if delivered < expected and (not tail or any(m in stderr for m in _DECODER_ERRORS)):
        return VideoDecodeError(url, "truncated", detail)
    return VideoDecodeError(url, "ffmpeg_failed", detail)
