import argparse

import pytest

from tubelets.errors import ConfigError
from tubelets.pipelines.arguments import config_from_args, parse_run_arguments


def namespace(**values) -> argparse.Namespace:
    defaults = {"config": None, "overrides": [], "run_id": None, "tracker": None}
    return argparse.Namespace(**{**defaults, **values})


def test_config_from_args_without_flags_is_the_default_config():
    config = config_from_args(namespace())
    assert config["run"]["run_id"] is None and config["tracker"]["name"] == "ipdt" and config["io"]["source"] == "video"


def test_the_shorthand_flags_override_set_which_overrides_the_config_file(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("tracker:\n  iou:\n    max_age: 9\n    min_length: 2\nio:\n  source: jpeg\n")
    args = namespace(config=str(preset), overrides=["tracker.iou.max_age=3", "run.run_id=from-set"], run_id="flag",
                     source="video")
    config = config_from_args(args)
    assert config["tracker"]["iou"]["max_age"] == 3 and config["tracker"]["iou"]["min_length"] == 2
    assert config["run"]["run_id"] == "flag" and config["io"]["source"] == "video"


def test_a_misspelt_key_is_a_config_error():
    with pytest.raises(ConfigError, match="max_agee"):
        config_from_args(namespace(overrides=["tracker.iou.max_agee=3"]))


def test_parse_run_arguments_splits_our_flags_from_beams():
    argv = ["in/*.mp4", "out", "--set", "io.stride=2", "--run-id", "r1", "--tracker", "iou",
            "--direct_running_mode=in_memory", "--job_name", "nightly"]
    args, config, options = parse_run_arguments("segment", argv)
    assert (args.input, args.output) == ("in/*.mp4", "out")
    assert (config["io"]["stride"], config["run"]["run_id"], config["tracker"]["name"]) == (2, "r1", "iou")
    beam_options = options.get_all_options()
    assert beam_options["runner"] == "DirectRunner" and beam_options["direct_running_mode"] == "in_memory"
    assert beam_options["job_name"] == "nightly"


def test_a_command_can_add_its_own_flags():
    def add_source(parser):
        parser.add_argument("--source", choices=("video", "jpeg"))

    _, config, _ = parse_run_arguments("evaluate", ["data", "out", "--source", "jpeg"], extend=add_source)
    assert config["io"]["source"] == "jpeg"
