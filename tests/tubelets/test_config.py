import pytest

from tubelets.config import (
    build_from_section,
    config_hash,
    defaults,
    load_config,
    merge,
    packaged_presets,
    parse_overrides,
)
from tubelets.errors import ConfigError


def test_defaults_load_and_overrides_parse_as_yaml():
    config = load_config(None, ["io.stride=3", "io.max_size=null", "run.run_id=nightly"])
    assert config["io"]["stride"] == 3
    assert config["io"]["max_size"] is None
    assert config["run"]["run_id"] == "nightly"


def test_unknown_key_names_the_key_and_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown config key 'io.strid'.*stride"):
        load_config(None, ["io.strid=2"])


def test_user_file_merges_over_defaults(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("io:\n  stride: 5\n")
    config = load_config(str(path))
    assert config["io"]["stride"] == 5 and config["io"]["source"] == "video"


@pytest.mark.parametrize(
    "text, match",
    [("io: [1, 2\n", "not valid YAML"), ("- 1\n- 2\n", "mapping at the top level"),
     ("nope: 1\n", "unknown config key")],
)
def test_bad_files_fail_early(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(str(path))


def test_missing_file_lists_presets(tmp_path):
    with pytest.raises(ConfigError, match="presets"):
        load_config(str(tmp_path / "absent.yaml"))
    assert "default" in packaged_presets()


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["stride"])


def test_merge_does_not_mutate_and_hash_is_stable():
    base = {"a": {"b": 1}}
    merged = merge(base, {"a": {"b": 2}})
    assert base == {"a": {"b": 1}} and merged == {"a": {"b": 2}}
    assert config_hash({"x": 1, "y": [1, 2]}) == config_hash({"y": [1, 2], "x": 1})
    assert config_hash(base) != config_hash(merged)


def test_build_from_section_passes_known_keys_and_names_the_unknown_ones():
    def make_thing(size=1, colour="red"):
        return size, colour

    assert build_from_section(make_thing, {"size": 3}, "thing") == (3, "red")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['sise'\] for thing; known: \['colour', 'size'\]"):
        build_from_section(make_thing, {"sise": 3}, "thing")


def test_build_from_section_names_the_settings_a_section_lacks():
    # Models keep no defaults: a section comes whole, so a missing key is named rather than a TypeError.
    def make_thing(*, size, colour, note=None):
        return size, colour

    with pytest.raises(ConfigError, match=r"missing setting\(s\) \['colour'\] for thing: .*tubelets.config.defaults"):
        build_from_section(make_thing, {"size": 3}, "thing")


def test_defaults_give_a_section_of_the_merged_config_as_a_copy():
    shipped = defaults("tracker.ipdt")
    assert shipped == load_config()["tracker"]["ipdt"]
    shipped["th_seq"] = 0.9
    assert defaults("tracker.ipdt")["th_seq"] == 0.5  # a copy: changing it changes nothing else
    assert defaults("tracker.ipdt", preset="shapes-vis")["max_colour_distance"] == 1.0
    assert defaults("tracker.ipdt")["max_colour_distance"] is None
    assert defaults("calibration", preset="paper")["th_cc"] == 0.5


def test_defaults_of_a_file_preset(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("tracker:\n  iou:\n    max_age: 9\n")
    assert defaults("tracker.iou", preset=str(path))["max_age"] == 9


@pytest.mark.parametrize("section, match", [
    ("tracker.ipd", r"config section 'tracker.ipd' does not exist; known keys at tracker: .*ipdt"),
    ("nope", r"known keys at the top level: .*calibration"),
    ("io.stride", r"config io.stride is a setting, not a section"),
])
def test_defaults_of_a_section_that_is_not_one(section, match):
    with pytest.raises(ConfigError, match=match):
        defaults(section)


@pytest.mark.parametrize("override, reader", [
    ("tracker.pixel.box_margin=2", "pixel"),  # ipdt's alone: the box of the instance level cuts the pixel mask
    ("tracker.pixel.window_influence=0.3", "pixel"),
    ("tracker.pixel.max_colour_distance=1.0", "pixel"),
    ("tracker.instance.mask_threshold=0.4", "instance"),
    ("tracker.instance.box_margin=2", "instance"),
])
def test_a_key_a_tracker_does_not_read_is_refused_naming_the_keys_it_reads(override, reader):
    with pytest.raises(ConfigError) as raised:
        load_config(None, [override])
    key = override.partition("=")[0]
    first, _, read = str(raised.value).partition("; it reads: ")
    assert first == f"config {key} is not read by the {reader} tracker"
    assert read.split(", ") == sorted(defaults(f"tracker.{reader}"))


def test_exponent_floats_parse_as_numbers():
    # PyYAML (YAML 1.1) reads these as strings, which the typed check would refuse.
    parsed = parse_overrides(["a=1e-4", "b=1.0e4", "c=-2E+3", "d=10", "e=1e", "f=nightly"])
    assert parsed == {"a": 1e-4, "b": 1e4, "c": -2e3, "d": 10, "e": "1e", "f": "nightly"}
    assert load_config(None, ["train_detector.lr=5e-4"])["train_detector"]["lr"] == 5e-4


def test_a_bad_value_in_a_file_fails_at_load(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("proposals:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"^config proposals.batch_size must be an integer >= 1, got 0$"):
        load_config(str(path))
