from pathlib import Path

from tubelets.config import read_yaml
from tubelets.config_reference import entries, reference

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def leaf_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        if isinstance(value, dict) and value:
            keys |= leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_the_committed_reference_is_generated_from_the_defaults():
    # Regenerate with: python -m tubelets.config_reference > docs/configuration.md
    assert DOCS.read_text() == reference()


def test_every_default_key_has_a_row_with_a_comment():
    text = (Path(__file__).resolve().parents[2] / "configs" / "default.yaml").read_text()
    settings = {entry.dotted: entry.comment for entry in entries(text) if not entry.section}
    # A mapping written inline ({a: 1}) is one row; so a key is covered by its own row or its mapping's.
    uncovered = [key for key in leaf_keys(read_yaml("default"))
                 if not any(key == row or key.startswith(row + ".") for row in settings)]
    assert uncovered == []
    assert [key for key, comment in settings.items() if not comment] == []


def test_entries_join_continuation_comments_and_nest_sections():
    text = """# file header, not a key's
top:            # a section
  value: 3      # first part
                # second part
  inner:
    flag: true  # a flag
after: null     # back at the top
"""
    found = [(entry.dotted, entry.section, entry.comment) for entry in entries(text)]
    assert found == [
        ("top", True, "a section"),
        ("top.value", False, "first part second part"),
        ("top.inner", True, ""),
        ("top.inner.flag", False, "a flag"),
        ("after", False, "back at the top"),
    ]
