"""Fixtures of the pipeline tests: a small Shapes-VIS set and an oracle stand-in for the detector.

The oracle is a ``ModelHandler`` that answers each frame with the data set's
ground truth of that frame (score 0.9, true labels), so an end-to-end run
checks the plumbing (decode, keyed inference, grouping, tracking, tables,
scoring) with a known, near-perfect answer. RunInference shows a handler only
the frame array, so the ground truth is looked up by a digest of the decoded
frame's bytes; decoding is deterministic, so the pipeline's decoder gives the
same bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import shutil
from typing import Iterable, Optional, Sequence

import numpy as np
import pytest
from apache_beam.ml.inference.base import ModelHandler

from tubelets.config import load_config
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.video import iter_frames
from tubelets.pipelines import segment
from tubelets.records import FrameDetections
from tubelets.synth import CATEGORIES, generate_dataset

ORACLE_SCORE = 0.9


def frame_digest(frame: np.ndarray) -> str:
    """A key of a decoded frame's exact content (shape and bytes)."""
    return hashlib.sha1(repr(frame.shape).encode() + frame.tobytes()).hexdigest()


def ground_truth_detections(dataset: YouTubeVISDataset, video_id: int, t: int) -> FrameDetections:
    """The annotated instances of frame ``t`` as detections: box from the mask, score 0.9, true label."""
    found = [(track.category_id, track.segmentations[t], track.bboxes[t]) for track in dataset.tracks(video_id)
             if track.segmentations[t] is not None]
    boxes = np.array([[x, y, x + w, y + h] for _, _, (x, y, w, h) in found], np.float32).reshape(-1, 4)
    return FrameDetections(t, boxes, np.full(len(found), ORACLE_SCORE, np.float32),
                           np.array([label for label, _, _ in found], np.int64), [rle for _, rle, _ in found])


class Answers(dict):
    """``{frame_digest: FrameDetections}``, weak-referenceable as Beam's model cache needs."""


class OracleModelHandler(ModelHandler[np.ndarray, list, Answers]):
    """Chunks of frames -> their frames' ground-truth detections, from a ``{frame_digest: FrameDetections}`` table."""

    def __init__(self, table: dict[str, FrameDetections]):
        super().__init__()
        self._table = table

    def load_model(self) -> Answers:
        return Answers(self._table)

    def run_inference(
        self, batch: Sequence[np.ndarray], model: Answers, inference_args: Optional[dict] = None
    ) -> Iterable[list[FrameDetections]]:
        missing = [frame.shape for chunk in batch for frame in chunk if frame_digest(frame) not in model]
        if missing:
            raise KeyError(f"the oracle knows no frame like these ({missing}): decoded differently?")
        # Copies: ProposeInstances sets .frame on what it gets.
        return [[dataclasses.replace(model[frame_digest(frame)]) for frame in chunk] for chunk in batch]


@pytest.fixture(scope="session")
def shapes_url(tmp_path_factory) -> str:
    """Three Shapes-VIS videos of 128x96 frames (mp4 and JPEG), seed 3: 9 instances, 90 frames."""
    root = tmp_path_factory.mktemp("pipeline-shapes") / "shapes"
    generate_dataset(str(root), videos=3, seed=3, width=128, height=96)
    return str(root)


@pytest.fixture
def vis_config() -> dict:
    """The default config with an untrained detector on the CPU (no checkpoint to load), named as Shapes-VIS."""
    names = [c["name"] for c in CATEGORIES]
    return load_config(None, ["detector.checkpoint=null", "scoring.checkpoint=null", "detector.device=cpu",
                               f"detector.categories={names}"])


@pytest.fixture
def listed_input(tmp_path_factory) -> str:
    """A glob that matches one (empty) file: a run's set-up lists INPUT but reads no video."""
    folder = tmp_path_factory.mktemp("in")
    (folder / "a.mp4").write_bytes(b"")
    return str(folder / "*.mp4")


@pytest.fixture(scope="session")
def tiny_url(tiny_shapes_set) -> str:
    """One Shapes-VIS video of 64x48 frames, seed 3: cheap for the real (untrained) detector."""
    return tiny_shapes_set("tiny", videos=1, seed=3, write_jpegs=False)


@pytest.fixture(scope="session")
def copy_videos(shapes_url):
    """``copy_videos(folder)``: the data set's three mp4s into ``folder``, named as in the data set."""

    def copy(folder):
        for video in YouTubeVISDataset(shapes_url).videos:
            shutil.copy(f"{shapes_url}/videos/{video.name}.mp4", folder / f"{video.name}.mp4")
        return folder

    return copy


@pytest.fixture(scope="session")
def oracle_table(shapes_url) -> dict[str, FrameDetections]:
    """Ground-truth detections of every frame of the data set's mp4s, by ``frame_digest``."""
    dataset = YouTubeVISDataset(shapes_url)
    table: dict[str, FrameDetections] = {}
    for video in dataset.videos:
        for t, frame in iter_frames(dataset.video_url(video.id)):
            digest = frame_digest(frame)
            assert digest not in table, f"two frames alike: frame {t} of {video.name}"
            table[digest] = ground_truth_detections(dataset, video.id, t)
    return table


@pytest.fixture(scope="session")
def oracle(oracle_table):
    """``with oracle():`` pipelines built inside get the oracle instead of the configured detector."""

    @contextlib.contextmanager
    def patched():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(segment, "detector_handler", lambda config: OracleModelHandler(oracle_table))
            yield

    return patched


@pytest.fixture(scope="session")
def run_flags() -> list[str]:
    """Flags of a fast test run: an untrained detector on the CPU (no checkpoint file; so no learned tubelet
    score, which belongs to the shipped detector), the data set's category names, and the in-process runner
    (fast to start; the oracle, defined in this file, is then never pickled into another process)."""
    names = "[" + ", ".join(c["name"] for c in CATEGORIES) + "]"
    return ["--set", "detector.checkpoint=null", "--set", "scoring.checkpoint=null", "--set", "detector.device=cpu",
            "--set", f"detector.categories={names}", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="session")
def dask_address(tmp_path_factory):
    """A Dask LocalCluster for the session's Dask runs: 2 worker processes of 1 thread each; its scheduler's address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      local_directory=str(tmp_path_factory.mktemp("dask-workers"))) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="session")
def dask_flags(dask_address) -> list[str]:
    """The Dask variant of ``run_flags``' runner flag: Beam's Dask runner on the session's cluster."""
    return ["--runner", "dask", "--dask-address", dask_address]
