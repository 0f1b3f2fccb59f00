"""A whole Shapes-VIS data set on disk, in the YouTube-VIS 2019 layout::

    OUT/instances.json                  videos, annotations, categories, info
    OUT/JPEGImages/video_0000/00000.jpg one JPEG per frame
    OUT/videos/video_0000.mp4           the same frames, H.264 yuv420p at spec.FPS

Video ``k`` is drawn from its own generator, seeded by ``(seed, k)``, so it is the
same however many videos are asked for. ``domain`` renders the same scenes with
another look (``spec.DOMAINS``); ``info["domain"]`` names it, absent for the source
domain (whose files stay what they always were).
"""

from __future__ import annotations

from typing import Iterator

import fsspec
import numpy as np

from tubelets import masks as rle
from tubelets.io.video_writer import write_mp4
from tubelets.synth import spec, writer
from tubelets.synth.scene import SyntheticInstance, SyntheticVideo, check_frame_size, generate_video

DESCRIPTION = "Shapes-VIS: synthetic video instance segmentation of six shape categories"


def video_name(index: int) -> str:
    """Name of the ``index``-th (0-based) video: ``video_0000``..."""
    return f"video_{index:04d}"


def video_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for video ``index`` of the data set with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def generate_dataset(
    out_url: str,
    videos: int = 3,
    seed: int = 0,
    width: int = 256,
    height: int = 192,
    hard: bool = False,
    write_videos: bool = True,
    write_jpegs: bool = True,
    domain: str = spec.SOURCE_DOMAIN,
) -> dict:
    """Write the data set under ``out_url`` (any fsspec URL) and return its ``instances.json`` dict.

    Raises ``ValueError`` for a negative ``videos`` or ``seed``, a frame side under
    32 pixels, (with ``write_videos``) an odd side, which yuv420p cannot hold, or an
    unknown ``domain``; all before anything is written.
    """
    check_arguments(videos, seed, width, height, write_videos, domain)
    fs, root = output_root(out_url)
    video_records, annotations = [], []
    for index, name, video in generated_videos(videos, seed, width, height, hard, domain):
        if write_jpegs:
            writer.write_jpegs(fs, f"{root}/JPEGImages/{name}", video.frames)
        if write_videos:
            write_video_file(fs, root, name, video)
        video_records.append(video_record(index + 1, name, video))
        annotations.extend(annotation_records(video, index + 1, first_id=len(annotations) + 1))
    dataset = {
        "info": _info(videos, seed, width, height, hard, domain),
        "videos": video_records,
        "annotations": annotations,
        "categories": [dict(c) for c in spec.CATEGORIES],
    }
    writer.write_json(fs, f"{root}/instances.json", dataset)
    return dataset


def output_root(out_url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system and root path of ``out_url`` (created, no trailing slash)."""
    fs, root = fsspec.core.url_to_fs(out_url)
    root = root.rstrip("/")
    fs.makedirs(root, exist_ok=True)
    return fs, root


def generated_videos(
    videos: int, seed: int, width: int, height: int, hard: bool, domain: str = spec.SOURCE_DOMAIN
) -> Iterator[tuple[int, str, SyntheticVideo]]:
    """``(index, name, video)`` of the data set's videos, each drawn from its own generator."""
    for index in range(videos):
        yield index, video_name(index), generate_video(video_rng(seed, index), width, height, hard, domain)


def write_video_file(fs: fsspec.AbstractFileSystem, root: str, name: str, video: SyntheticVideo) -> None:
    """``root/videos/<name>.mp4``: the frames as H.264 yuv420p at ``spec.FPS``."""
    write_mp4(fs.unstrip_protocol(f"{root}/videos/{name}.mp4"), video.frames, spec.FPS)


def video_record(video_id: int, name: str, video: SyntheticVideo) -> dict:
    """The ``videos`` entry of one video."""
    return {
        "id": video_id,
        "name": name,
        "width": video.width,
        "height": video.height,
        "length": video.length,
        "file_names": [f"{name}/{t:05d}.jpg" for t in range(video.length)],
    }


def annotation_records(video: SyntheticVideo, video_id: int, first_id: int) -> list[dict]:
    """The ``annotations`` entries of one video's instances, ids counting from ``first_id``."""
    return [_annotation(instance, video, video_id, first_id + k) for k, instance in enumerate(video.instances)]


def _annotation(instance: SyntheticInstance, video: SyntheticVideo, video_id: int, annotation_id: int) -> dict:
    encoded = [rle.encode(m) if m is not None else None for m in instance.masks]
    return {
        "id": annotation_id,
        "video_id": video_id,
        "category_id": instance.category_id,
        "iscrowd": 0,
        "width": video.width,
        "height": video.height,
        "length": video.length,
        "segmentations": encoded,
        "bboxes": [rle.bbox(r) if r is not None else None for r in encoded],
        "areas": [rle.area(r) if r is not None else None for r in encoded],
    }


def _info(videos: int, seed: int, width: int, height: int, hard: bool, domain: str) -> dict:
    info = {
        "description": DESCRIPTION,
        "generator": "tubelets.synth",
        "version": spec.GENERATOR_VERSION,
        "seed": int(seed),
        "hard": bool(hard),
        "videos": int(videos),
        "width": int(width),
        "height": int(height),
        "fps": spec.FPS,
    }
    if domain != spec.SOURCE_DOMAIN:
        info["domain"] = domain
    return info


def check_arguments(
    videos: int, seed: int, width: int, height: int, write_videos: bool, domain: str = spec.SOURCE_DOMAIN
) -> None:
    spec.domain_spec(domain)  # raises for an unknown domain
    for name, value in (("videos", videos), ("seed", seed)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    check_frame_size(width, height)
    if write_videos and (width % 2 or height % 2):
        raise ValueError(
            f"frame size {width}x{height} has an odd side; the mp4 (yuv420p) needs even width and height"
            " (choose even sizes or write_videos=False)"
        )
