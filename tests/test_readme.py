"""The README and docs/ are checked like code: links resolve, commands exist, presets match the package."""

import re
import shlex
from pathlib import Path

import pytest

from tubelets.cli import build_parser
from tubelets.config import packaged_presets

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def subcommands(parser) -> dict:
    return next(action.choices for action in parser._actions if action.__class__.__name__ == "_SubParsersAction")


def shell_lines(text: str) -> list[str]:
    """Lines of the ```sh blocks, continuation lines joined, comments cut."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_the_readme_stays_a_users_document():
    assert len(README.read_text().splitlines()) <= 300


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_relative_links_resolve(document):
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", document.read_text())
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert [link for link in local if not (document.parent / link).exists()] == []


def test_every_tubelets_command_in_the_readme_exists():
    commands = subcommands(build_parser())
    used = [shlex.split(line)[1] for line in shell_lines(README.read_text()) if line.startswith("tubelets ")]
    assert used, "the README shows tubelets commands"
    assert sorted(set(used) - set(commands)) == []


def test_the_readme_lists_exactly_the_packaged_presets():
    rows = re.findall(r"^\| `([a-z_-]+)` \| ", README.read_text().split("## Configuration")[1], flags=re.M)
    assert sorted(rows) == packaged_presets()
