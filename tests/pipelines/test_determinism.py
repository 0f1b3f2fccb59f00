"""A video's tubelets are the same whichever videos run with it: bit for bit, whatever the batch size."""

import shutil

import pytest

from tubelets import tables
from tubelets.pipelines import segment
from tubelets.synth import generate_dataset

# Six frames a video (stride 5 of 30), one torch thread: the default detector and tracker, run small.
FLAGS = ["--set", "detector.device=cpu", "--set", "tracker.ipdt.device=cpu", "--set", "io.stride=5",
         "--set", "proposals.torch_threads=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two one-video Shapes-VIS sets of different frame sizes, as ``a.mp4`` (64x48) and ``b.mp4`` (48x64).

    Portrait B makes the detector's batch padding of a mixed batch differ from A's alone (256x256, not 192x256).
    """
    folder = tmp_path_factory.mktemp("determinism")
    for name, seed, width, height in (("a", 3, 64, 48), ("b", 4, 48, 64)):
        root = folder / f"set-{name}"
        generate_dataset(str(root), videos=1, seed=seed, width=width, height=height, write_jpegs=False)
        (video,) = (root / "videos").glob("*.mp4")
        shutil.copy(video, folder / f"{name}.mp4")
    return folder


def tubelet_rows(output, run_id: str, video: str) -> list[dict]:
    rows = tables.read_table(str(output), "tubelets", run_id).drop_columns(["run_id"]).to_pylist()
    return sorted((row for row in rows if row["video"] == video), key=lambda row: row["tubelet_id"])


@pytest.mark.slow
def test_a_videos_tubelets_do_not_depend_on_its_batch_mates(inputs, tmp_path):
    video = str(inputs / "a.mp4")
    # Alone, a frame a forward pass; then with B's frames in batches of 4 (the old handler's case that differed).
    segment.run([video, str(tmp_path), "--run-id", "alone", *FLAGS, "--set", "proposals.batch_size=1"])
    segment.run([f"{inputs}/*.mp4", str(tmp_path), "--run-id", "mixed", *FLAGS, "--set", "proposals.batch_size=4"])
    alone = tubelet_rows(tmp_path, "alone", video)
    assert alone, "the detector found nothing in A: the comparison would be empty"
    assert tubelet_rows(tmp_path, "mixed", str(inputs / "b.mp4"))  # B did run with A
    assert tubelet_rows(tmp_path, "mixed", video) == alone
