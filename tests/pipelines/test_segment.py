import contextlib
import io
import os
import re
import shutil

import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline

from tubelets import masks, tables
from tubelets.errors import ConfigError
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.pipelines import segment
from tubelets.pipelines.run_setup import prepare_run
from tubelets.query import run_query
from tubelets.synth import CATEGORIES
from tubelets.transforms.proposals import DetectorModelHandler

NAMES = [c["name"] for c in CATEGORIES]


def test_the_detector_handler_follows_the_proposals_config(vis_config):
    vis_config["proposals"]["batch_size"] = 3
    handler = segment.detector_handler(vis_config)
    assert isinstance(handler, DetectorModelHandler)
    assert handler.batch_elements_kwargs()["max_batch_size"] == 3


def test_the_graph_has_stable_labels(vis_config, tmp_path, listed_input):
    spec = prepare_run(listed_input, str(tmp_path), vis_config)
    pipeline = test_pipeline.TestPipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    outputs = segment.build_pipeline(pipeline, spec)  # built, never run
    assert set(outputs) == {"videos", "tracked", "dead_letters", "rows"}
    labels = {label.split("/")[0] for label in pipeline.applied_labels}
    assert {"MatchInputs", "Decode", "Proposals", "GroupProposals", "Track", "TubeletRows", "WriteTubelets",
            "DeadLetterFiles", "WriteDeadLetters"} <= labels


# ---- end to end, on the data set's videos mixed with bad files ------------------------------------


@pytest.fixture(scope="module")
def mixed_folder(copy_videos, tmp_path_factory):
    """The data set's three mp4s, a corrupt mp4 (random bytes), a zero-byte mp4 and a text file named .mp4."""
    folder = copy_videos(tmp_path_factory.mktemp("mixed"))
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("these are my notes, not a video\n")
    return folder


@pytest.fixture(scope="module")
def mixed_run(mixed_folder, oracle, run_flags, tmp_path_factory):
    """``segment`` over the mixed folder with the oracle detector: (output folder, run id, stderr)."""
    output = tmp_path_factory.mktemp("segment-out")
    stderr = io.StringIO()
    with oracle(), contextlib.redirect_stderr(stderr):
        segment.run([f"{mixed_folder}/*.mp4", str(output), "--run-id", "mixed", *run_flags])
    return output, "mixed", stderr.getvalue()


def test_every_good_video_gives_tubelets(mixed_run, mixed_folder, shapes_url):
    output, run_id, _ = mixed_run
    rows = tables.read_table(str(output), "tubelets", run_id).to_pylist()
    good = {str(mixed_folder / f"{v.name}.mp4"): v for v in YouTubeVISDataset(shapes_url).videos}
    assert {row["video"] for row in rows} == set(good)
    for row in rows:
        assert row["video_id"] is None and row["category_name"] in NAMES
        assert row["video_length"] == good[row["video"]].length
        frame = row["frames"][-1]
        assert masks.decode({"size": [frame["height"], frame["width"]], "counts": frame["rle"]}).shape == (96, 128)


def test_each_bad_file_is_one_dead_letter_with_its_reason(mixed_run, mixed_folder):
    output, run_id, _ = mixed_run
    rows = tables.read_table(str(output), "dead_letters", run_id).to_pylist()
    reasons = {os.path.basename(row["input"]): row["error_type"] for row in rows}
    assert reasons == {"corrupt.mp4": "not_a_video", "empty.mp4": "empty", "notes.mp4": "not_a_video"}
    assert len(rows) == 3 and all(row["stage"] == "decode" and row["run_id"] == run_id for row in rows)
    assert all(row["input"].startswith(str(mixed_folder)) and row["input"] in row["message"] for row in rows)


def test_the_run_prints_the_dead_letter_count(mixed_run):
    output, run_id, stderr = mixed_run
    assert f"run {run_id}: 3 videos, 90 frames" in stderr
    assert f"3 input(s) went to dead letters: see {output}/{run_id}/dead_letters/" in stderr


def snapshot(folder) -> dict[str, bytes]:
    return {path: open(path, "rb").read() for path in sorted(str(p) for p in folder.rglob("*") if p.is_file())}


def test_a_rerun_with_the_same_run_id_fails_and_changes_nothing(mixed_run, mixed_folder, oracle, run_flags):
    output, run_id, _ = mixed_run
    before = snapshot(output / run_id)
    with oracle(), pytest.raises(ConfigError, match="exists already"):
        segment.run([f"{mixed_folder}/*.mp4", str(output), "--run-id", run_id, *run_flags])
    assert snapshot(output / run_id) == before and len(before) >= 2


def test_two_runs_sit_side_by_side_and_the_query_sees_both(mixed_run, mixed_folder, oracle, run_flags):
    output, run_id, _ = mixed_run
    with oracle():
        segment.run([str(mixed_folder / "video_0001.mp4"), str(output), "--run-id", "second", *run_flags])
    counted = run_query(str(output), "SELECT run_id, count(DISTINCT video) AS videos FROM tubelets GROUP BY run_id "
                                     "ORDER BY run_id")
    assert counted.to_pylist() == [{"run_id": "mixed", "videos": 3}, {"run_id": "second", "videos": 1}]
    dead = run_query(str(output), "SELECT run_id, count(*) AS n FROM dead_letters GROUP BY run_id")
    assert dead.to_pylist() == [{"run_id": "mixed", "n": 3}]


def test_with_detect_every_the_tracker_fills_the_frames_the_detector_skipped(mixed_folder, oracle, run_flags,
                                                                             tmp_path, capsys):
    video = str(mixed_folder / "video_0001.mp4")
    with oracle():
        segment.run([video, str(tmp_path), "--run-id", "every", *run_flags])
        segment.run([video, str(tmp_path), "--run-id", "third", *run_flags, "--set", "proposals.detect_every=3"])
    stderr = capsys.readouterr().err
    proposals = [int(re.search(rf"run {run}: .* (\d+) proposals", stderr).group(1)) for run in ("every", "third")]
    assert proposals[1] < proposals[0] / 2  # the detector ran on frames 0, 3, 6, ... only
    covered = {}
    for run in ("every", "third"):
        rows = tables.read_table(str(tmp_path), "tubelets", run).to_pylist()
        covered[run] = sorted({item["frame"] for row in rows for item in row["frames"]})
    # The frames between the detector's are the tracker's: most of those that detecting every frame covers.
    skipped = {run: [frame for frame in covered[run] if frame % 3] for run in covered}
    assert len(skipped["third"]) >= 0.8 * len(skipped["every"]) > 0


@pytest.mark.slow
def test_the_multi_process_runner_works_with_the_real_detector(mixed_folder, run_flags, tmp_path, capsys):
    """Two worker processes, the untrained detector (pickled to the workers), one good and one bad video."""
    fast = ["--set", "io.stride=6", "--set", "detector.min_size=96", "--set", "detector.max_size=128",
            "--set", "detector.detections_per_frame=5", "--set", "proposals.torch_threads=1"]
    flags = [flag for flag in run_flags if not flag.startswith("--direct_running_mode")]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("video_0000.mp4", "notes.mp4"):
        shutil.copy(mixed_folder / name, inputs / name)
    segment.run([f"{inputs}/*.mp4", str(tmp_path / "out"), "--run-id", "mp", *flags, *fast,
                 "--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    stderr = capsys.readouterr().err
    assert "run mp: 1 videos, 5 frames" in stderr and "1 input(s) went to dead letters" in stderr
    (dead,) = tables.read_table(str(tmp_path / "out"), "dead_letters", "mp").to_pylist()
    assert dead["input"].endswith("notes.mp4") and dead["error_type"] == "not_a_video"
    tubelets = tables.read_table(str(tmp_path / "out"), "tubelets", "mp")
    assert set(tubelets.column("video").to_pylist()) <= {str(inputs / "video_0000.mp4")}
