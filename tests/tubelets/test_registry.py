import pytest

from tubelets.errors import ConfigError
from tubelets.registry import Registry


def test_register_get_and_list():
    registry = Registry("widget")
    registry.register("b")(2)
    registry.register("a")(1)
    assert registry.names() == ["a", "b"] and registry.get("a") == 1


def test_unknown_names_list_the_known_ones_and_twice_is_an_error():
    registry = Registry("widget")
    registry.register("a")(1)
    with pytest.raises(ConfigError, match="unknown widget 'z'; known widgets: a"):
        registry.get("z")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(3)


def test_check_runs_before_registering_and_copies_are_independent():
    def only_ints(name, entry):
        if not isinstance(entry, int):
            raise TypeError(f"{name} must be an int")

    registry = Registry("number", check=only_ints)
    with pytest.raises(TypeError, match="x must be an int"):
        registry.register("x")("nope")
    twin = registry.copy()
    twin.register("y")(5)
    assert registry.names() == [] and twin.names() == ["y"]
