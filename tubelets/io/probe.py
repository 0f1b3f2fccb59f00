"""Facts about a video file (size, frame rate, exact frame count, rotation).

With ``ffprobe`` available, it is asked through ffmpeg-python. Without it (the
``imageio-ffmpeg`` binary ships none) one ``ffmpeg`` run gives everything: the
input dump it prints on stderr has size, rate, codec and rotation, and a
stream-copy pass to the null muxer (no decoding, so it is fast) ends with the
exact packet count, ``frame=N``.

Rotation convention: ``VideoInfo.rotation`` is the clockwise angle by which the
stored frames must be turned to be upright, as in the classic ``rotate`` tag
that phones write (a portrait phone clip is stored landscape with
``rotation=90``). ffmpeg's display matrix reports the counter-clockwise angle.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess

import ffmpeg

from tubelets.errors import VideoDecodeError
from tubelets.io.ffmpeg_binary import ffmpeg_binary, ffprobe_binary
from tubelets.io.files import file_size, local_path, read_head

# ISO-BMFF (mp4/mov) top-level boxes: a file starting with one of them is an mp4
# container, so a missing moov box means "cut off", not "not a video".
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin", b"styp", b"uuid"}
# What ffmpeg's demuxer says when the data ends before the container's index does.
_DEMUX_TRUNCATION = ("partial file", "corrupt input packet")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """Probe facts of the first video stream of ``url``.

    ``width`` and ``height`` are the display size in pixels, i.e. after applying
    ``rotation`` (clockwise degrees: 0, 90, 180 or 270). ``frame_count`` is exact
    (counted packets, not duration times rate); ``duration`` is in seconds (the
    stream's where ffprobe reports it, else the container's).
    """

    url: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    rotation: int
    codec: str


def probe(url: str) -> VideoInfo:
    """Probe the video at any fsspec ``url``; raises ``VideoDecodeError`` on bad input."""
    check_file(url)
    with local_path(url) as path:
        return probe_local(url, path)


def check_file(url: str) -> None:
    """Raise ``VideoDecodeError`` (``missing`` or ``empty``) before running ffmpeg."""
    size = file_size(url)
    if size is None:
        raise VideoDecodeError(url, "missing", "no such file")
    if size == 0:
        raise VideoDecodeError(url, "empty", "the file has zero bytes")


def probe_local(url: str, path: str) -> VideoInfo:
    """Probe the local copy ``path`` of ``url`` (errors and ``info.url`` name ``url``)."""
    ffprobe = ffprobe_binary()
    if ffprobe is not None:
        return probe_with_ffprobe(url, path, ffprobe)
    return probe_with_ffmpeg(url, path)


def ffmpeg_input_name(path: str) -> str:
    """``path`` as an ffmpeg input that no ``name:`` prefix can be mistaken in."""
    return "file:" + os.path.abspath(path)


def probe_with_ffmpeg(url: str, path: str) -> VideoInfo:
    """Probe with one ffmpeg stream-copy pass (no ffprobe needed)."""
    copy_pass = ffmpeg.input(ffmpeg_input_name(path))["v:0"].output("-", c="copy", format="null")
    args = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-nostats", *copy_pass.get_args()]
    done = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = done.stderr.decode("utf-8", errors="replace")
    input_dump = re.split(r"^(?:Output #|Stream mapping:)", stderr, maxsplit=1, flags=re.M)[0]
    stream = _video_stream_block(input_dump)
    if "Input #" not in stderr:  # ffmpeg prints the input dump only once it could open the file
        raise classify_failure(url, stderr, read_head(path, 16))
    if stream is None:
        raise VideoDecodeError(url, "no_video_stream", "the file has no video stream")
    counts = re.findall(r"frame=\s*(\d+)", stderr)
    if any(marker in stderr for marker in _DEMUX_TRUNCATION):
        readable = f"{counts[-1]} frames readable" if counts else "no frame readable"
        raise VideoDecodeError(url, "truncated", f"the data ends before the container's index does ({readable})")
    if done.returncode != 0 or not counts:
        raise VideoDecodeError(url, "ffmpeg_failed", last_lines(stderr))
    return _info_from_dump(url, input_dump, stream, int(counts[-1]))


def _video_stream_block(input_dump: str) -> str | None:
    """Text of the first real video stream (its line and indented metadata), or None."""
    lines = input_dump.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"Stream #\d+:\d+.*: Video: ", line) and "(attached pic)" not in line:
            block = [line]
            for follower in lines[i + 1 :]:
                if re.match(r"\s*(Stream #|Input #|Output #)", follower):
                    break
                block.append(follower)
            return "\n".join(block)
    return None


def _info_from_dump(url: str, input_dump: str, stream: str, frame_count: int) -> VideoInfo:
    codec = re.search(r": Video: (\w+)", stream).group(1)
    size = re.search(r", (\d+)x(\d+)", stream)
    if size is None:
        raise VideoDecodeError(url, "ffmpeg_failed", f"no frame size in ffmpeg's stream line: {stream.strip()}")
    width, height = int(size.group(1)), int(size.group(2))
    rate = re.search(r", ([\d.]+)(k?) (?:fps|tbr)", stream)
    fps = float(rate.group(1)) * (1000 if rate.group(2) else 1) if rate else 0.0
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", input_dump)
    if duration:
        hours, minutes, seconds = duration.groups()
        seconds_total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    else:
        seconds_total = frame_count / fps if fps else 0.0
    return _make_info(url, width, height, fps, frame_count, seconds_total, _rotation_from_dump(stream), codec)


def _rotation_from_dump(stream: str) -> int:
    matrix = re.search(r"rotation of (-?[\d.]+) degrees", stream, flags=re.I)
    if matrix:
        return clockwise_rotation(-float(matrix.group(1)))
    tag = re.search(r"^\s*rotate\s*:\s*(-?\d+)", stream, flags=re.M)
    return clockwise_rotation(float(tag.group(1))) if tag else 0


def clockwise_rotation(degrees: float) -> int:
    """A clockwise angle snapped to the nearest of 0, 90, 180, 270."""
    return int(round(degrees / 90.0)) * 90 % 360


def _make_info(
    url: str, width: int, height: int, fps: float, frame_count: int, duration: float, rotation: int, codec: str
) -> VideoInfo:
    """``VideoInfo`` from coded (stored) size, swapped to display size for 90/270."""
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(url, width, height, float(fps), int(frame_count), float(duration), rotation, codec)


def probe_with_ffprobe(url: str, path: str, ffprobe: str) -> VideoInfo:
    """Probe with ``ffprobe -count_packets`` (exact count, container's claim to compare)."""
    try:
        data = ffmpeg.probe(ffmpeg_input_name(path), cmd=ffprobe, select_streams="v:0", count_packets=None)
    except ffmpeg.Error as error:
        raise classify_failure(url, (error.stderr or b"").decode("utf-8", errors="replace"), read_head(path, 16))
    streams = [s for s in data.get("streams", []) if not s.get("disposition", {}).get("attached_pic")]
    if not streams:
        raise VideoDecodeError(url, "no_video_stream", "the file has no video stream")
    stream = streams[0]
    counted, claimed = int(stream.get("nb_read_packets", 0)), int(stream.get("nb_frames", 0) or 0)
    if claimed and counted < claimed:
        raise VideoDecodeError(url, "truncated", f"{counted} of the {claimed} frames the container lists")
    duration = float(stream.get("duration") or data.get("format", {}).get("duration") or 0.0)
    return _make_info(
        url, int(stream["width"]), int(stream["height"]), _ffprobe_rate(stream), counted, duration,
        _rotation_from_ffprobe(stream), stream.get("codec_name", ""),
    )


def _ffprobe_rate(stream: dict) -> float:
    """Average frame rate, else the base rate; ffprobe writes ``0/0`` for unknown."""
    for key in ("avg_frame_rate", "r_frame_rate"):
        numerator, _, denominator = stream.get(key, "0/0").partition("/")
        if int(numerator) and int(denominator or 1):
            return int(numerator) / int(denominator or 1)
    return 0.0


def _rotation_from_ffprobe(stream: dict) -> int:
    for side_data in stream.get("side_data_list", []):
        if "rotation" in side_data:
            return clockwise_rotation(-float(side_data["rotation"]))
    tag = stream.get("tags", {}).get("rotate")
    return clockwise_rotation(float(tag)) if tag else 0


def classify_failure(url: str, stderr: str, head: bytes) -> VideoDecodeError:
    """The ``VideoDecodeError`` for an input that ffmpeg/ffprobe could not open."""
    if "No such file or directory" in stderr:
        return VideoDecodeError(url, "missing", "no such file")
    if "moov atom not found" in stderr:
        if head[4:8] in _MP4_BOXES:
            return VideoDecodeError(url, "truncated", "mp4 index (moov box) missing: the file is cut off")
        return VideoDecodeError(url, "not_a_video", "not an mp4 container")
    if "Invalid data found when processing input" in stderr:
        return VideoDecodeError(url, "not_a_video", "ffmpeg recognises no media format in it")
    return VideoDecodeError(url, "ffmpeg_failed", last_lines(stderr))


def last_lines(stderr: str, n: int = 3) -> str:
    """The last ``n`` non-empty lines of ffmpeg's stderr, joined with `` | ``."""
    # Drop the " @ 0x55d0..." object addresses: noise that differs on every run.
    lines = [re.sub(r" @ 0x[0-9a-f]+", "", line).strip() for line in re.split(r"[\r\n]+", stderr)]
    lines = [line for line in lines if line]
    return " | ".join(lines[-n:])
