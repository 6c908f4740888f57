"""The one settings resolver: the CLI's flags and the API's keywords give the same settings."""

from __future__ import annotations

from pathlib import Path

import pytest

import deconvlint.api as api
from deconvlint.cli.main import build_parser, resolve_configuration
from deconvlint.config.resolve import resolve_settings
from deconvlint.config.settings import Settings
from deconvlint.errors import ConfigError

CONFIG = """\
ignore: [DL004]
fail-on: error
per-node-ignores:
  "decoder.*": [DL001]
DL004:
  max-cv: 0.5
models:
  - target: pkg.models:Generator
"""


@pytest.mark.parametrize(
    ("flags", "keywords"),
    [
        ([], {}),
        (["--select", "DL004"], {"select": "DL004"}),
        (["--extend-select", "DL003,DL006"], {"extend_select": ["DL003", "DL006"]}),
        (["--ignore", "DL00", "--fail-on", "info"], {"ignore": ("DL00",), "fail_on": "info"}),
    ],
)
def test_cli_and_api_layer_the_file_then_the_flags_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], keywords: dict
) -> None:
    (tmp_path / ".deconvlint.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    config, from_cli, notes = resolve_configuration(build_parser().parse_args(flags))
    from_api = api.resolve_settings(**keywords)
    assert from_cli == from_api == resolve_settings(**keywords).settings
    assert notes == []
    assert [m.target for m in config.models] == ["pkg.models:Generator"]
    assert from_api.per_node_ignores == {"decoder.*": ("DL001",)}
    assert from_api.option("DL004", "max-cv", None) == 0.5
    assert from_api.fail_on == keywords.get("fail_on", "error")


def test_a_settings_object_is_the_file_layer() -> None:
    given = Settings(select=("DL001",), fail_on="info", rule_options={"DL004": {"max-cv": 2.0}})
    resolved = resolve_settings(given, extend_select="DL004")
    assert resolved.settings.select == ("DL001", "DL004")
    assert resolved.settings.fail_on == "info"
    assert resolved.settings.rule_options == {"DL004": {"max-cv": 2.0}}


def test_errors_name_the_flag_or_the_keyword() -> None:
    with pytest.raises(ConfigError, match=r"^extend_select: unknown rule or prefix 'DL999'"):
        api.resolve_settings(Settings(), extend_select="DL999")
    args = build_parser().parse_args(["--extend-select", "DL999", "--config", "none.yaml"])
    with pytest.raises(ConfigError, match="no such configuration file"):
        resolve_configuration(args)  # the file is read first
    args.config = None
    with pytest.raises(ConfigError, match=r"^deconvlint: error: --extend-select: unknown rule"):
        resolve_configuration(args)
    with pytest.raises(ConfigError, match=r"^fail_on: expected one of info, warning, error"):
        api.resolve_settings(Settings(), fail_on="fatal")


def test_a_warning_about_the_discovered_file_comes_before_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".deconvlint.yaml").write_text("select: [NOPE]\n")
    (tmp_path / "pyproject.toml").write_text("[tool.deconvlint]\nignore = ['DL005']\n")
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []
    with pytest.raises(ConfigError, match="NOPE"):
        resolve_settings(warn=seen.append)
    assert len(seen) == 1 and "[tool.deconvlint] is ignored" in seen[0]
    (tmp_path / ".deconvlint.yaml").write_text("select: [DL001]\n")
    assert resolve_settings().notes == tuple(seen)
