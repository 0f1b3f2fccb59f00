"""The Shapes-VIS videos in the DAVIS 2017 layout, for video object segmentation::

    OUT/JPEGImages/480p/video_0000/00000.jpg   one JPEG per frame
    OUT/Annotations/480p/video_0000/00000.png  one palette PNG per frame: object ids, 0 background
    OUT/ImageSets/2017/val.txt                 every sequence name
    OUT/videos/video_0000.mp4                  the same frames, H.264 yuv420p at spec.FPS

The videos are those ``generate_dataset`` writes for the same ``seed``,
``hard`` and ``domain``. An object's id is its 1-based place among the video's instances,
the order of its annotations in the YouTube-VIS export, so both layouts name
the objects alike. The folder name ``480p`` is the layout's, whatever the frame size.
"""

from __future__ import annotations

from tubelets.io.davis import annotation_url, masks_to_id_map, write_annotation
from tubelets.synth import writer
from tubelets.synth.dataset import check_arguments, generated_videos, output_root, write_video_file
from tubelets.synth.scene import SyntheticVideo
from tubelets.synth.spec import SOURCE_DOMAIN

SPLIT = "val"


def generate_davis(
    out_url: str,
    videos: int = 3,
    seed: int = 0,
    width: int = 256,
    height: int = 192,
    hard: bool = False,
    resolution: str = "480p",
    domain: str = SOURCE_DOMAIN,
) -> list[str]:
    """Write the data set under ``out_url`` (any fsspec URL); returns the sequence names.

    Raises ``ValueError`` as ``generate_dataset`` does (negative ``videos`` or
    ``seed``, a side under 32 pixels, an odd side, an unknown domain), before anything is written.
    """
    check_arguments(videos, seed, width, height, write_videos=True, domain=domain)
    fs, root = output_root(out_url)
    names = []
    for _, name, video in generated_videos(videos, seed, width, height, hard, domain):
        writer.write_jpegs(fs, f"{root}/JPEGImages/{resolution}/{name}", video.frames)
        write_id_maps(fs.unstrip_protocol(root), name, video, resolution)
        write_video_file(fs, root, name, video)
        names.append(name)
    fs.makedirs(f"{root}/ImageSets/2017", exist_ok=True)
    fs.pipe_file(f"{root}/ImageSets/2017/{SPLIT}.txt", "".join(f"{name}\n" for name in names).encode("utf-8"))
    return names


def write_id_maps(root_url: str, name: str, video: SyntheticVideo, resolution: str = "480p") -> None:
    """Every frame's annotation PNG: instance ``k`` (0-based) has id ``k + 1``; unseen is 0."""
    for t in range(video.length):
        visible = {k + 1: inst.masks[t] for k, inst in enumerate(video.instances) if inst.masks[t] is not None}
        id_map = masks_to_id_map(visible, (video.height, video.width))
        write_annotation(annotation_url(root_url, name, t, resolution), id_map)
