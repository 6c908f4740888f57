"""The README's CI examples: valid YAML whose deconvlint commands the real parser accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from deconvlint.cli.main import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## CI integrations", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```yaml\n(.*?)```", SECTION, flags=re.S)


def _commands(node: object) -> list[str]:
    if isinstance(node, dict):
        return [c for v in node.values() for c in _commands(v)]
    if isinstance(node, list):
        return [c for v in node for c in _commands(v)]
    if isinstance(node, str) and node.startswith("deconvlint models/"):
        return [node]
    return []


def test_there_are_a_github_and_a_gitlab_example() -> None:
    assert len(BLOCKS) == 2
    github, gitlab = (yaml.safe_load(block) for block in BLOCKS)
    uses = [step.get("uses", "") for step in github["jobs"]["deconvlint"]["steps"]]
    assert any(u.startswith("github/codeql-action/upload-sarif") for u in uses)
    assert gitlab["deconvlint"]["artifacts"]["paths"] == ["deconvlint.html"]


@pytest.mark.parametrize(
    "command", [c for block in BLOCKS for c in _commands(yaml.safe_load(block))]
)
def test_each_command_parses(command: str) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.paths == ["models/"]


def test_every_flag_in_the_table_exists() -> None:
    help_text = build_parser().format_help()
    for flag in re.findall(r"^\| `(-[-\w]+)", SECTION, flags=re.M):
        assert flag in help_text, flag
