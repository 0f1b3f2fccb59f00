"""Video object segmentation stages: pair videos with their prompts, follow the objects, write DAVIS PNGs.

A video's *name* joins it with its prompts: a data set video's name (DAVIS
sequence, YouTube-VIS video) or a video file's name without its extension
(``gs://b/clips/cat.mp4`` -> ``cat``), as in the prompts file.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from tubelets import masks
from tubelets.io.davis import annotation_url, write_annotation
from tubelets.io.frames import VideoFrames
from tubelets.io.prompts import PromptError, check_prompts, video_name_from_url
from tubelets.records import ObjectPrompt, Tubelet, TubeletFrame, VideoMeta
from tubelets.transforms.inputs import VideoInput
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS, dead_letter
from tubelets.transforms.portable import SplitOutputs

LOG = logging.getLogger(__name__)
OBJECT_CATEGORY = {0: "object"}  # VOS tubelets have no category: id 0 in the tubelets table


def video_name(video: VideoInput | VideoMeta) -> str:
    """The name prompts use for an input or decoded video (see the module docstring)."""
    from_dataset = video.source in ("jpeg", "davis") or video.video_id is not None
    return video.key if from_dataset else video_name_from_url(video.key)


def pair_prompts(joined: tuple[str, Mapping[str, list]]) -> Iterator:
    """``(name, {"input": [VideoInput], "meta": [VideoMeta], "prompts": [[ObjectPrompt]]})``
    -> ``(VideoMeta, prompts)``.

    Dead letters: prompts that name no input, an input with no prompt, two
    inputs of one name. An input without meta failed to decode and has its
    dead letter already. The other videos go on.
    """
    name, grouped = joined
    inputs, metas = list(grouped["input"]), list(grouped["meta"])
    prompts = [prompt for batch in grouped["prompts"] for prompt in batch]
    if not inputs:
        if prompts:
            yield dead_letter(name, "prompts",
                              PromptError(f"prompts name video {name!r}, which is not among the inputs"))
    elif len(inputs) > 1:
        error = PromptError(f"{len(inputs)} input videos are named {name!r}: {sorted(i.key for i in inputs)}")
        yield from (dead_letter(item.key, "prompts", error) for item in inputs)
    elif not prompts:
        yield dead_letter(inputs[0].key, "prompts", PromptError(f"no prompt names video {name!r}"))
    elif metas:
        yield metas[0], prompts


class PairPrompts(beam.PTransform):
    """``VideoInput``s, ``(key, VideoMeta)`` and ``(name, [ObjectPrompt])`` -> ``(VideoMeta, prompts)``, dead letters
    tagged."""

    def expand(self, streams):
        inputs, metas, prompts = streams
        return (
            {
                "input": inputs | "InputsByName" >> beam.Map(lambda item: (video_name(item), item)),
                "meta": metas | "MetaByName" >> beam.Map(lambda item: (video_name(item[1]), item[1])),
                "prompts": prompts,
            }
            | "JoinPrompts" >> beam.CoGroupByKey()
            | "Pair" >> SplitOutputs(_CountingPairs(), DEAD_LETTERS, main="videos")
        )


class _CountingPairs(beam.DoFn):
    """:func:`pair_prompts`, counting its dead letters in the run's summary."""

    def setup(self):
        self._failed = Metrics.counter("tubelets", "dead_letters")

    def process(self, joined) -> Iterator:
        for output in pair_prompts(joined):
            if isinstance(output, beam.pvalue.TaggedOutput):
                self._failed.inc()
            yield output


def build_segmenter(vos_cfg: Mapping[str, Any]):
    """The :class:`~tubelets.models.vos.VosSegmenter` of the ``vos:`` section (``prompts`` is not its key)."""
    from tubelets.models.vos import VosSegmenter

    return VosSegmenter.from_config({key: value for key, value in vos_cfg.items() if key != "prompts"})


def objects_to_tubelets(objects: Mapping[int, list[TubeletFrame]]) -> list[Tubelet]:
    """``{object_id: frames}`` -> tubelets with ``tubelet_id = object_id``, category 0, mean frame score."""
    return [
        Tubelet(int(object_id), 0, float(np.mean([f.score for f in frames])), frames)
        for object_id, frames in sorted(objects.items())
        if frames
    ]


class SegmentObjects(beam.DoFn):
    """``(VideoMeta, [ObjectPrompt])`` -> ``(VideoMeta, [Tubelet])``, one tubelet per prompted object.

    A prompt that does not fit its video (frame past the end, mask of another
    size, point outside) or a video that fails while being read sends that
    video to dead letters; the others go on. ``torch_threads`` (``proposals.torch_threads``)
    fixes torch's CPU thread count on each worker, so masks do not depend on the worker.
    """

    def __init__(self, vos_cfg: Mapping[str, Any], torch_threads: int | None = None):
        self._vos_cfg = dict(vos_cfg)
        self._torch_threads = torch_threads

    def setup(self):
        import torch

        # As TrackVideo: the segmenter's convolutions sum in another order with another thread count, and a
        # worker's count is whatever its process started with (measured: other masks with 1 thread than with 2).
        if self._torch_threads:
            torch.set_num_threads(self._torch_threads)
        self._segmenter = build_segmenter(self._vos_cfg)
        self._tubelets = Metrics.counter("tubelets", "tubelets")
        self._failed = Metrics.counter("tubelets", "dead_letters")

    def process(self, item: tuple[VideoMeta, list[ObjectPrompt]]) -> Iterator:
        meta, prompts = item
        try:
            check_prompts(prompts, video_name(meta), meta.length, (meta.height, meta.width))
            frames = VideoFrames(meta)  # the video's own size: prompts are given on it (no io.max_size)
            tubelets = objects_to_tubelets(self._segmenter.segment(frames, meta.length, prompts))
        except Exception as error:  # noqa: BLE001 - one bad video or prompt must not stop the others
            LOG.warning("video %s goes to dead letters: %s", meta.key, error)
            self._failed.inc()
            yield dead_letter(meta.key, "prompts" if isinstance(error, PromptError) else "vos", error)
        else:
            self._tubelets.inc(len(tubelets))
            LOG.info("video %s: %d frames, %d objects", meta.key, meta.length, len(tubelets))
            yield meta, tubelets


def frame_id_maps(tubelets: list[Tubelet], meta: VideoMeta) -> Iterator[np.ndarray]:
    """Each frame's ``uint8 [H, W]`` object-id map (0 background) of a video's VOS tubelets, in frame order.

    One frame at a time: a long video's maps are never held together. VOS
    masks never overlap, so the order objects are painted in does not matter.
    """
    by_frame: dict[int, list[tuple[int, dict]]] = {}
    for tubelet in tubelets:
        for item in tubelet.frames:
            by_frame.setdefault(item.frame, []).append((tubelet.tubelet_id, item.mask))
    for frame in range(meta.length):
        id_map = np.zeros((meta.height, meta.width), np.uint8)
        for object_id, mask in by_frame.get(frame, []):
            id_map[masks.decode(mask).astype(bool)] = object_id
        yield id_map


class WriteAnnotations(beam.DoFn):
    """``(VideoMeta, [Tubelet])`` -> DAVIS palette PNGs, every frame, under ``run_url/Annotations/480p/<name>/``."""

    def __init__(self, run_url: str):
        self._run_url = run_url

    def process(self, item: tuple[VideoMeta, list[Tubelet]]) -> Iterator[str]:
        meta, tubelets = item
        name = video_name(meta)
        for frame, id_map in enumerate(frame_id_maps(tubelets, meta)):
            write_annotation(annotation_url(self._run_url, name, frame), id_map)
        yield name
