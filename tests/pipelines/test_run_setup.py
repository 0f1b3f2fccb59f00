"""What a run settles before any video is read: OUTPUT, the run id, the devices, the checkpoints, INPUT."""

import os
import re

import numpy as np
import pytest

from tubelets.config import config_hash, load_config
from tubelets.errors import CheckpointError, ConfigError, DatasetError
from tubelets.pipelines.run_setup import check_native_frames, prepare_run, run_config
from tubelets.synth import CATEGORIES

NAMES = [c["name"] for c in CATEGORIES]
NO_VIDEOS = "no-videos-here/*.mp4"


# ---- prepare_run (VIS runs): everything that can be checked before a video is read -----------------


def test_a_missing_checkpoint_fails_before_any_video_is_read(vis_config, tmp_path):
    vis_config["detector"]["checkpoint"] = str(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="nope.pt"):
        prepare_run(str(tmp_path / NO_VIDEOS), str(tmp_path / "out"), vis_config)
    assert not (tmp_path / "out").exists()


def test_a_corrupt_checkpoint_fails_before_any_video_is_read(vis_config, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    vis_config["detector"]["checkpoint"] = str(corrupt)
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        prepare_run(str(tmp_path / NO_VIDEOS), str(tmp_path / "out"), vis_config)


def test_a_missing_tracker_checkpoint_fails_before_any_video_is_read(vis_config, tmp_path):
    vis_config["tracker"]["ipdt"]["checkpoint"] = str(tmp_path / "no-tracker.pt")
    with pytest.raises(CheckpointError, match="no-tracker.pt"):
        prepare_run(str(tmp_path / NO_VIDEOS), str(tmp_path / "out"), vis_config)
    assert not (tmp_path / "out").exists()


def test_bad_tracker_settings_fail_before_any_video_is_read(vis_config, tmp_path):
    vis_config["tracker"]["ipdt"]["min_confidence"] = 3
    with pytest.raises(ConfigError, match="min_confidence"):
        prepare_run(str(tmp_path / NO_VIDEOS), str(tmp_path / "out"), vis_config)


@pytest.mark.parametrize("every", [0, -2, 1.5, "3", True])
def test_a_bad_detect_every_fails_before_any_video_is_read(vis_config, tmp_path, every):
    vis_config["proposals"]["detect_every"] = every
    with pytest.raises(ConfigError, match="proposals.detect_every must be a whole number"):
        prepare_run(str(tmp_path / NO_VIDEOS), str(tmp_path / "out"), vis_config)


def test_an_existing_run_folder_is_a_config_error(vis_config, tmp_path):
    (tmp_path / "taken").mkdir()
    vis_config["run"]["run_id"] = "taken"
    with pytest.raises(ConfigError, match="taken"):
        prepare_run("in/*.mp4", str(tmp_path), vis_config)


def test_an_output_beam_cannot_write_is_a_config_error(vis_config):
    with pytest.raises(ConfigError, match="memory://nowhere"):
        prepare_run("in/*.mp4", "memory://nowhere", vis_config)


def test_an_output_that_is_a_file_is_a_config_error(vis_config, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match="is a file: give a folder"):
        run_config(str(tmp_path / "afile"), vis_config)


def test_the_run_spec_names_the_run_and_its_provenance(vis_config, tmp_path, listed_input):
    spec = prepare_run(listed_input, str(tmp_path) + "/", vis_config)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", spec.run_id)  # the default: UTC time and a random suffix
    assert spec.run_url == f"{tmp_path}/{spec.run_id}" and spec.checkpoint_id == "untrained"
    assert spec.category_names == {index: name for index, name in enumerate(NAMES, start=1)}
    assert spec.config["run"]["run_id"] == spec.run_id  # the manifest records the id a resume must match
    assert spec.provenance == {"config_hash": config_hash(spec.config), "checkpoint_id": "untrained",
                               "tracker": "ipdt", "task": "vis", "input": listed_input}
    assert spec.input_keys == {listed_input.replace("*.mp4", "a.mp4")}
    assert not os.listdir(tmp_path)  # checked, nothing written yet


def test_an_input_that_matches_nothing_fails_before_a_run_folder_exists(tmp_path):
    config = load_config(None, ["detector.checkpoint=null", "scoring.checkpoint=null"])
    with pytest.raises(DatasetError, match="matches no video files"):
        prepare_run(str(tmp_path / "nothing" / "*.mp4"), str(tmp_path / "out"), config)
    with pytest.raises(DatasetError):
        prepare_run(str(tmp_path / "missing-folder"), str(tmp_path / "out"), config)
    assert not (tmp_path / "out").exists()


# ---- check_native_frames: evaluate's scoring and VOS prompts need the video's own frames -----------


@pytest.mark.parametrize("setting", ["io.stride=2", "io.fps=5", "io.max_size=64"])
def test_frames_skipped_resampled_or_resized_are_refused_with_the_reason(setting):
    config = load_config(None, [setting])
    with pytest.raises(ConfigError, match=r"^this run scores masks, so it needs io.stride=1, io.fps=null and "
                                          r"io.max_size=null \(got "):
        check_native_frames(config, "this run scores masks")


def test_the_video_s_own_frames_pass():
    check_native_frames(load_config(None, []), "unused")


def test_a_scorer_of_another_detector_fails_before_a_run_folder_exists(tmp_path, listed_input):
    # The shipped scorer read detector-small's scores; an untrained detector's mean something else.
    config = load_config(None, ["detector.checkpoint=null"])
    with pytest.raises(CheckpointError, match="scoring.checkpoint=null"):
        prepare_run(listed_input, str(tmp_path / "out"), config)
    assert not (tmp_path / "out").exists()
