"""``process_cached``: one value per key and process, the most recent keys kept, built once under threads."""

import threading
import time

from tubelets.process_cache import process_cached


def test_a_value_is_built_once_per_key_and_the_oldest_key_is_dropped():
    built = []

    @process_cached(maxsize=2)
    def value(name: str) -> list:
        built.append(name)
        return [name]

    assert value("a") is value("a") and built == ["a"]
    value("b")
    value("a")  # "a" is now the most recent: "b" goes when "c" comes
    value("c")
    assert value("a") == ["a"] and built == ["a", "b", "c"]
    value("b")
    assert built == ["a", "b", "c", "b"]


def test_a_key_function_picks_what_tells_values_apart():
    @process_cached(maxsize=1, key=lambda settings, note: tuple(sorted(settings.items())))
    def value(settings: dict, note: str) -> object:
        return object()

    assert value({"a": 1}, "first") is value({"a": 1}, "second")  # dicts are not hashable: the key is
    assert value({"a": 2}, "first") is not value({"a": 1}, "first")


def test_a_failed_build_is_not_kept():
    calls = []

    @process_cached()
    def value(name: str) -> str:
        calls.append(name)
        if len(calls) == 1:
            raise ValueError("first try fails")
        return name

    try:
        value("a")
    except ValueError:
        pass
    assert value("a") == "a" and calls == ["a", "a"]


def test_threads_setting_up_at_once_build_the_value_once():
    built = []

    @process_cached()
    def value(name: str) -> object:
        built.append(name)
        time.sleep(0.05)  # long enough for every thread to ask while it is built
        return object()

    found = []
    threads = [threading.Thread(target=lambda: found.append(value("a"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built == ["a"] and len({id(item) for item in found}) == 1
