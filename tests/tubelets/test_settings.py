import copy
import re

import pytest

from tubelets.config import load_config, packaged_presets, read_yaml
from tubelets.errors import ConfigError
from tubelets.settings import DETECTOR_PRESETS, TASKS, TRACKER_NAMES, validate_config


@pytest.fixture(scope="module")
def defaults():
    return load_config()


def with_value(config, dotted, value):
    changed = copy.deepcopy(config)
    *parents, leaf = dotted.split(".")
    node = changed
    for part in parents:
        node = node[part]
    node[leaf] = value
    return changed


@pytest.mark.parametrize(
    "override, message",
    [
        ("calibration.score_threshold=-1", "config calibration.score_threshold must be a number in [0, 1], got -1"),
        ("proposals.batch_size=abc", "config proposals.batch_size must be an integer >= 1, got 'abc'"),
        ("proposals.batch_size=0", "config proposals.batch_size must be an integer >= 1, got 0"),
        ("io.stride=0", "config io.stride must be an integer >= 1, got 0"),
        ("detector.device=tpu", "config detector.device must be one of auto, cpu, cuda, cuda:N, got 'tpu'"),
        ("calibration.th_cc=2", "config calibration.th_cc must be a number in [0, 1], got 2"),
        ("tracker.name=nope", "config tracker.name must be one of ipdt, pixel, instance, iou, got 'nope'"),
        ("io.fps=0", "config io.fps must be a number > 0 or null, got 0"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key_and_the_value(override, message):
    with pytest.raises(ConfigError) as raised:
        load_config(None, [override])
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "dotted, value",
    [
        ("proposals.batch_size", "3"),  # a string is not an integer
        ("proposals.batch_size", True),  # nor is a boolean
        ("proposals.batch_size", 2.0),
        ("detector.score_threshold", "0.5"),
        ("detector.score_threshold", True),
        ("calibration.enabled", 1),
        ("tracker.ipdt.device", "cuda:x"),
        ("tracker.pixel.feature_window", 1),
        ("tracker.ipdt.box_margin", 0.5),
        ("tracker.instance.window_influence", 1.5),
        ("tracker.pixel.mask_threshold", -0.1),
        ("tracker.iou.min_similarity", 0),
        ("vos.device", "gpu"),
        ("vos.snap_iou", 1.5),
        ("run.task", "track"),
        ("run.run_id", False),
        ("io.source", "davis"),
        ("io.max_size", 1),
        ("detector.preset", "tiny"),
        ("detector.num_classes", 1),
        ("train_detector.optimizer", "adam"),
        ("train_detector.lr", 0),
        ("train_detector.checkpoint_every", 0),
        ("train_detector.augment.scale", [1.25, 0.75]),
        ("train_detector.augment.scale", [1.0]),
        ("train_tracker.schedule", "linear"),
        ("train_tracker.loss_weights.box", -1),
        ("train_tracker.augment.occluder_size", [0, 0.5]),
        ("train_tracker.milestones", [0.5, "late"]),
    ],
)
def test_wrong_types_and_ranges_are_refused(defaults, dotted, value):
    with pytest.raises(ConfigError, match=rf"^config {re.escape(dotted)} must be .*, got {re.escape(repr(value))}$"):
        validate_config(with_value(defaults, dotted, value))


@pytest.mark.parametrize(
    "overrides",
    [
        ["detector.device=cuda:1"],
        ["detector.device=cuda", "vos.device=cpu", "tracker.ipdt.device=cuda:0"],
        ["detector.score_threshold=1", "calibration.th_cc=0"],  # an integer is a fine number
        ["train_detector.lr=1e-4", "train_tracker.lr=5.0e-4"],  # YAML 1.2 floats, not strings
        ["run.run_id=20240101"],  # `--run-id 20240101` arrives as an integer
        ["run.run_id=2024-01-01"],
        ["io.fps=29.97", "io.max_size=640"],
        ["detector.min_size=[480, 512, 544]", "detector.category_map={1: 1, 3: 2}", "detector.categories=[a, b]"],
        ["tracker.name=iou", "tracker.ipdt.switch_iou=null", "tracker.ipdt.max_colour_distance=null"],
        ["train_tracker.model={embedding_dim: 16}", "train_detector.clip_grad_norm=null"],
    ],
)
def test_valid_values_pass(overrides):
    load_config(None, overrides)


def test_fps_and_a_stride_are_not_both_given():
    with pytest.raises(ConfigError, match=r"^config io.fps must be null unless io.stride is 1 .*, got 10$"):
        load_config(None, ["io.stride=2", "io.fps=10"])


def test_several_problems_name_the_first_and_count_the_others(defaults):
    config = with_value(with_value(defaults, "io.stride", 0), "proposals.batch_size", "x")
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    message = str(raised.value)
    assert message == "config io.stride must be an integer >= 1, got 0 (and 1 more: proposals.batch_size)"
    assert "\n" not in message


def test_missing_and_unknown_keys_are_named(defaults):
    config = copy.deepcopy(defaults)
    del config["vos"]["device"]
    with pytest.raises(ConfigError, match=r"^config vos.device is missing$"):
        validate_config(config)
    with pytest.raises(ConfigError, match=r"^config io.strid is not a known key$"):
        validate_config(with_value(defaults, "io.strid", 2))
    with pytest.raises(ConfigError, match=r"^config tracker.iou must be a mapping of settings, got 3$"):
        validate_config(with_value(defaults, "tracker.iou", 3))


def test_a_tracker_section_holding_a_key_its_tracker_does_not_read_is_refused(defaults):
    # A whole config (a file validated as it is, not merged over the defaults) says the same as --set.
    with pytest.raises(ConfigError, match=r"^config tracker.pixel.box_margin is not read by the pixel tracker; "
                                          r"it reads: checkpoint, cover_iou, .*$"):
        validate_config(with_value(defaults, "tracker.pixel.box_margin", 1.15))
    with pytest.raises(ConfigError, match=r"^config tracker.iou.max_lost is not read by the iou tracker; "
                                          r"it reads: class_mismatch_scale, mask_weight, .*$"):
        validate_config(with_value(defaults, "tracker.iou.max_lost", 6))


@pytest.mark.parametrize("preset", packaged_presets())
def test_every_packaged_preset_loads(preset):
    config = load_config(preset)  # merged over the defaults and validated
    assert config["run"]["task"] in TASKS
    validate_config(config)


def test_the_paper_preset_turns_this_project_s_rules_off():
    paper = load_config("paper")
    assert (paper["calibration"]["th_cc"], paper["calibration"]["other_classes"], paper["calibration"]["beta"]) == (
        0.5, 0, 0.1)
    for name in ("ipdt", "pixel", "instance"):
        tracker = paper["tracker"][name]
        assert tracker["max_unconfirmed"] is None and tracker["switch_iou"] is None, name
        assert tracker.get("max_colour_distance") is None and tracker.get("relink_frames") is None, name
        assert not tracker.get("check_fill_colour"), name


def test_the_defaults_set_every_key_and_the_model_defaults_none():
    from tubelets.settings import Settings

    validate_config(read_yaml("default"))

    def no_defaults(model):
        for name, field in model.model_fields.items():
            assert field.is_required(), f"{model.__name__}.{name} has a default: configs/default.yaml holds them"
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                no_defaults(annotation)

    no_defaults(Settings)


def test_the_choices_match_the_registries():
    from tubelets.models.detector import known_presets
    from tubelets.models.trackers import known_trackers
    from tubelets.tables import TASKS as TABLE_TASKS

    assert sorted(DETECTOR_PRESETS) == sorted(known_presets())
    assert sorted(TRACKER_NAMES) == sorted(known_trackers())
    assert TASKS == TABLE_TASKS
