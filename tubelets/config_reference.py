"""The configuration reference (``docs/configuration.md``), generated from ``configs/default.yaml``.

The YAML is the one home of every default and its comments are the
documentation of each key, so the reference is read off it rather than
written twice: each ``key: value  # comment`` line gives a row (dotted key,
default, comment; comment lines indented under a key continue its comment),
and each key without a value opens a section. The defaults printed are the
loaded values, not the YAML text, so what the reference says is what a run
gets. A test regenerates the file and fails when it differs::

    python -m tubelets.config_reference > docs/configuration.md
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import re
from typing import Any, Iterator

from tubelets.config import DEFAULT_PRESET, packaged_presets, read_yaml

# `key: rest`, where rest is a value and/or a comment; keys are plain identifiers in the defaults file.
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")
_COMMENT_LINE = re.compile(r"^(?P<indent> *)#\s?(?P<text>.*)$")


@dataclasses.dataclass
class Entry:
    """One key of the defaults file: a setting (``section`` False) or a section heading."""

    dotted: str
    section: bool
    comment: str
    indent: int


def _split_comment(rest: str) -> tuple[str, str]:
    """``' 0.5  # why'`` -> ``('0.5', 'why')``; values in the defaults file hold no ``#``."""
    value, _, comment = rest.partition("#")
    return value.strip(), comment.strip()


def entries(text: str) -> list[Entry]:
    """Every key of the YAML ``text`` in file order, with its comment (continuation lines joined)."""
    found: list[Entry] = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the open sections
    for line in text.splitlines():
        if not line.strip():
            continue
        comment = _COMMENT_LINE.match(line)
        if comment:
            # A comment line indented under a key continues that key's comment; others (file header) are not keys'.
            if found and len(comment["indent"]) > found[-1].indent:
                found[-1].comment = f"{found[-1].comment} {comment['text'].strip()}".strip()
            continue
        match = _KEY_LINE.match(line)
        if not match:
            continue  # a YAML merge key (<<) or a list item: no key of its own
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        value, text_comment = _split_comment(match["rest"])
        dotted = ".".join([key for _, key in parents] + [match["key"]])
        # A key whose value is empty (or only a YAML anchor) opens a section when lines below it are indented.
        is_section = value == "" or value.startswith("&")
        found.append(Entry(dotted, is_section, text_comment, indent))
        if is_section:
            parents.append((indent, match["key"]))
    return found


def _lookup(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _format_value(value: Any) -> str:
    """A default as a user writes it in YAML or ``--set``: ``null``, ``true``, ``0.5``, ``[0.75, 0.9]``."""
    if isinstance(value, str):
        return value
    return json.dumps(value).replace('"', "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _preset_summary(name: str) -> tuple[str, list[str]]:
    """A packaged preset's header comment and the dotted keys it sets."""
    text = importlib.resources.files("tubelets.configs").joinpath(f"{name}.yaml").read_text()
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    keys = []

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                keys.append(f"{prefix}{key}={_format_value(value)}")

    walk(read_yaml(name), "")
    return " ".join(part for part in header if part), keys


def reference_lines() -> Iterator[str]:
    """The lines of ``docs/configuration.md``."""
    text = importlib.resources.files("tubelets.configs").joinpath(f"{DEFAULT_PRESET}.yaml").read_text()
    config = read_yaml(DEFAULT_PRESET)
    yield "# Configuration reference"
    yield ""
    yield ("Generated from `configs/default.yaml` by `python -m tubelets.config_reference > docs/configuration.md`; "
           "do not edit by hand (a test fails when the two differ).")
    yield ""
    yield ("A run's configuration is these defaults, then a preset or YAML file (`--config NAME_OR_URL`), then "
           "`--set KEY=VALUE` overrides (values parse as YAML). A key that is not listed here is refused before any "
           "video is read, and so is a value of the wrong type or out of range.")
    yield ""
    yield "## Presets"
    yield ""
    yield "| preset | what it is for | keys it sets |"
    yield "|---|---|---|"
    for name in packaged_presets():
        if name == DEFAULT_PRESET:
            continue
        header, keys = _preset_summary(name)
        yield f"| `{name}` | {_cell(header)} | {'<br>'.join(f'`{key}`' for key in keys)} |"
    in_table = False
    for entry in entries(text):
        if entry.section:
            yield ""
            yield f"## `{entry.dotted}`" if "." not in entry.dotted else f"### `{entry.dotted}`"
            if entry.comment:
                yield ""
                yield entry.comment
            in_table = False
            continue
        if not in_table:
            yield ""
            yield "| key | default | what it does |"
            yield "|---|---|---|"
            in_table = True
        yield f"| `{entry.dotted}` | `{_cell(_format_value(_lookup(config, entry.dotted)))}` | {_cell(entry.comment)} |"


def reference() -> str:
    """``docs/configuration.md`` as text."""
    return "\n".join(reference_lines()) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
