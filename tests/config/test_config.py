"""Configuration: discovery, checking against the catalogue, and merging with the flags.

The CLI's handling of the same files, as a subprocess, is in ``tests/cli/test_cli.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deconvlint.config.load import (
    Options,
    discover_config,
    load_config,
    merge,
    parse_config_text,
    parse_selectors,
)
from deconvlint.config.settings import Settings
from deconvlint.errors import ConfigError
from deconvlint.rules.catalogue import load_catalogue

ALL_RULES = tuple(load_catalogue())


def toml(text: str) -> Options:
    return parse_config_text(text, "pyproject.toml")


def yaml(text: str) -> Options:
    return parse_config_text(text, ".deconvlint.yaml")


def enabled(settings: Settings) -> list[str]:
    catalogue = load_catalogue()
    return [r for r in catalogue if settings.is_enabled(r, catalogue[r].default)]


def default_rules() -> list[str]:
    return [r for r, doc in load_catalogue().items() if doc.default]


# --- reading ---------------------------------------------------------------------------------


def test_toml_and_yaml_read_the_same_settings() -> None:
    from_toml = toml(
        '[tool.deconvlint]\nselect = ["DL00"]\nextend-select = ["DL006"]\nignore = ["DL005"]\n'
        'fail-on = "error"\n\n[tool.deconvlint.per-node-ignores]\n"decoder.*" = ["DL001"]\n\n'
        "[tool.deconvlint.DL004]\nmax-cv = 0.05\n"
    )
    from_yaml = yaml(
        "select: [DL00]\nextend-select: [DL006]\nignore: [DL005]\nfail-on: error\n"
        "per-node-ignores:\n  decoder.*: [DL001]\nDL004:\n  max-cv: 0.05\n"
    )
    for options in (from_toml, from_yaml):
        assert options.select == ("DL00",)
        assert options.extend_select == ("DL006",)
        assert options.ignore == ("DL005",)
        assert options.fail_on == "error"
        assert options.per_node_ignores == {"decoder.*": ("DL001",)}
        assert options.rule_options == {"DL004": {"max-cv": 0.05}}


def test_empty_files_mean_no_settings() -> None:
    assert yaml("") == Options(source=".deconvlint.yaml")
    assert toml("[tool.deconvlint]\n") == Options(source="pyproject.toml")


def test_int_is_accepted_for_a_float_option_and_underscores_for_dashes() -> None:
    assert yaml("DL004: {max_cv: 1}\n").rule_options == {"DL004": {"max-cv": 1.0}}
    assert isinstance(yaml("DL004: {max-cv: 1}\n").rule_options["DL004"]["max-cv"], float)


def test_selectors_are_upper_cased_and_checked() -> None:
    catalogue = load_catalogue()
    assert parse_selectors(["dl001", " DL00 ", "ALL", ""], catalogue) == ("DL001", "DL00", "ALL")
    for bad in (["DL9"], ["DL0010"], ["X"], "DL001", [1]):
        with pytest.raises(ValueError):
            parse_selectors(bad, catalogue)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tool.deconvlint]\nselect = ["DL001"]\nverbose = true\n',
            "pyproject.toml:3: error: tool.deconvlint.verbose: unknown key",
        ),
        (
            '[tool.deconvlint]\nselect = [\n  "DL001",\n  "DL00X",\n]\n',
            "pyproject.toml:2: error: tool.deconvlint.select: unknown rule or prefix 'DL00X'",
        ),
        (
            "[tool.deconvlint]\nfail-on = 2\n",
            "pyproject.toml:2: error: tool.deconvlint.fail-on: expected one of info, warning, error",
        ),
        (
            "[tool.deconvlint]\nDL004 = { max-cv = true }\n",
            "pyproject.toml:2: error: tool.deconvlint.DL004.max-cv: expected float, got boolean",
        ),
        (
            "[tool.deconvlint.DL001]\nmax-cv = 0.1\n",
            "pyproject.toml:2: error: tool.deconvlint.DL001.max-cv: unknown option for DL001",
        ),
        (
            "[tool.deconvlint]\nDL004 = 0.1\n",
            "pyproject.toml:2: error: tool.deconvlint.DL004: expected a table of options",
        ),
        (
            '[tool.deconvlint]\nper-node-ignores = ["up1"]\n',
            "pyproject.toml:2: error: tool.deconvlint.per-node-ignores: expected a table",
        ),
        ('[tool.deconvlint]\nselect = ["DL001"]]\n', "pyproject.toml:2: error: invalid TOML"),
        ("[tool]\ndeconvlint = 3\n", "pyproject.toml: error: tool.deconvlint: expected a table"),
    ],
)
def test_toml_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        toml(text)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "select: [DL001]\nignore:\n  - DL001\n  - NOPE\n",
            ".deconvlint.yaml:2: error: ignore: unknown rule or prefix 'NOPE'",
        ),
        ("DL002:\n  anything: 1\n", ".deconvlint.yaml:2: error: DL002.anything: unknown option"),
        ("DL999: {}\n", ".deconvlint.yaml:1: error: DL999: unknown rule"),
        ("select: DL001\n", ".deconvlint.yaml:1: error: select: expected a list of rule ids"),
        ("select: [DL001]\n  bad indent: 1\n", ".deconvlint.yaml:2: error: invalid YAML"),
        ("just a string\n", ".deconvlint.yaml: error: top level: expected a table of settings"),
    ],
)
def test_yaml_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        yaml(text)
    assert str(info.value).startswith(message), str(info.value)


def test_yaml_is_read_safely() -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        yaml("select: !!python/object/apply:os.system ['echo hi']\n")


def test_pyproject_given_explicitly_must_have_the_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"no \[tool.deconvlint\] table"):
        load_config(tmp_path / "pyproject.toml")


def test_other_toml_files_may_use_the_top_level(tmp_path: Path) -> None:
    (tmp_path / "deconvlint.toml").write_text('ignore = ["DL006"]\n')
    assert load_config(tmp_path / "deconvlint.toml").ignore == ("DL006",)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"select: [\xe9]\n")
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "latin1.yaml")


# --- discovery -------------------------------------------------------------------------------


def test_discovery_walks_up_to_the_first_folder_with_a_config(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert discover_config(deep).path is None or not str(discover_config(deep).path).startswith(
        str(tmp_path)
    )
    (tmp_path / ".deconvlint.yaml").write_text("select: [DL001]\n")
    assert discover_config(deep).path == (tmp_path / ".deconvlint.yaml").resolve()
    (tmp_path / "a" / "pyproject.toml").write_text('[project]\nname = "no table"\n')
    assert discover_config(deep).path == (tmp_path / ".deconvlint.yaml").resolve()
    (tmp_path / "a" / "b" / "pyproject.toml").write_text("[tool.deconvlint]\nignore = []\n")
    found = discover_config(deep)
    assert found.path == (tmp_path / "a" / "b" / "pyproject.toml").resolve()
    assert found.warnings == ()


def test_yaml_wins_in_the_same_folder_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / ".deconvlint.yaml").write_text("select: [DL001]\n")
    (tmp_path / "pyproject.toml").write_text("[tool.deconvlint]\n")
    found = discover_config(tmp_path)
    assert found.path == (tmp_path / ".deconvlint.yaml").resolve()
    assert len(found.warnings) == 1 and "takes precedence" in found.warnings[0]


def test_broken_pyproject_on_the_way_up_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        discover_config(tmp_path)


# --- merging ---------------------------------------------------------------------------------


def test_no_selection_anywhere_keeps_the_catalogue_defaults() -> None:
    settings = merge(Options(), Options())
    assert settings.select is None
    assert enabled(settings) == default_rules()
    assert settings.fail_on == "warning"


def test_config_selection() -> None:
    assert enabled(merge(Options(select=("DL001",)), Options())) == ["DL001"]
    assert enabled(merge(Options(ignore=("DL00",)), Options())) == []
    assert enabled(merge(Options(select=("ALL",), ignore=("DL005",)), Options())) == [
        r for r in ALL_RULES if r not in ("DL005", "DL006", "DL007")
    ]


def test_opt_in_rules_need_their_exact_id() -> None:
    # select = ["DL00"] (the README's example) must not switch on an opt-in rule by surprise
    dl00 = enabled(merge(Options(select=("DL00",)), Options()))
    assert "DL006" not in dl00 and "DL007" not in dl00 and "DL001" in dl00
    assert "DL006" not in enabled(merge(Options(select=("ALL",)), Options()))
    assert "DL006" in enabled(merge(Options(select=("DL00",)), Options(extend_select=("DL006",))))
    assert "DL007" in enabled(merge(Options(select=("DL001", "DL007")), Options()))
    weights = toml("[tool.deconvlint]\nweights = true\nselect = ['DL00']\n")
    assert "DL007" in enabled(merge(weights, Options()))
    # a prefix still ignores them
    assert "DL006" not in enabled(
        merge(Options(extend_select=("DL006",), ignore=("DL",)), Options())
    )


def test_flag_select_starts_over_and_beats_config_ignore() -> None:
    config = Options(select=("DL001", "DL003"), ignore=("DL003",))
    assert enabled(merge(config, Options())) == ["DL001"]
    assert enabled(merge(config, Options(select=("DL003",)))) == ["DL003"]
    assert enabled(merge(config, Options(extend_select=("DL003",)))) == ["DL001", "DL003"]
    assert enabled(merge(config, Options(ignore=("DL001",)))) == []


def test_flag_fail_on_wins_and_options_merge() -> None:
    config = Options(
        fail_on="error",
        per_node_ignores={"up*": ("DL001",)},
        rule_options={"DL004": {"max-cv": 0.5}},
    )
    settings = merge(config, Options(fail_on="info"))
    assert settings.fail_on == "info"
    assert settings.is_ignored_for_node("DL001", "up1")
    assert not settings.is_ignored_for_node("DL001", "down1")
    assert settings.option("DL004", "max-cv", 0.0) == 0.5
    assert merge(config, Options()).fail_on == "error"


# --- models listed for checking (torch targets) ----------------------------------------------


def test_models_in_toml_and_yaml() -> None:
    from_toml = toml(
        "[tool.deconvlint]\nignore = []\n\n"
        '[[tool.deconvlint.models]]\ntarget = "pkg.models:Generator"\n'
        "input-shape = [1, 3, 64, 64]\n\n[tool.deconvlint.models.kwargs]\nchannels = 8\n\n"
        '[[tool.deconvlint.models]]\ntarget = "pkg.models:two_inputs"\n'
        "input-shape = [[1, 3, 8, 8], [1, 10]]\n"
    )
    from_yaml = yaml(
        "models:\n  - target: pkg.models:Generator\n    kwargs: {channels: 8}\n"
        "    input-shape: [1, 3, 64, 64]\n"
        "  - {target: pkg.models:two_inputs, input-shape: [[1, 3, 8, 8], [1, 10]]}\n"
    )
    for options in (from_toml, from_yaml):
        first, second = options.models
        assert (first.target, dict(first.kwargs), first.input_shapes) == (
            "pkg.models:Generator",
            {"channels": 8},
            ((1, 3, 64, 64),),
        )
        assert (second.target, dict(second.kwargs), second.input_shapes) == (
            "pkg.models:two_inputs",
            {},
            ((1, 3, 8, 8), (1, 10)),
        )


def test_listed_models_import_from_the_configuration_folder(tmp_path: Path) -> None:
    (tmp_path / ".deconvlint.yaml").write_text("models: [{target: 'pkg.models:Generator'}]\n")
    (model,) = load_config(tmp_path / ".deconvlint.yaml").models
    assert model.import_dir == str(tmp_path.resolve())
    assert model.input_shapes == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tool.deconvlint]\nmodels = "pkg.models:Generator"\n',
            "pyproject.toml:2: error: tool.deconvlint.models: expected a list of tables",
        ),
        (
            "[[tool.deconvlint.models]]\ntarget = 3\n",
            "pyproject.toml:2: error: tool.deconvlint.models[0].target: expected a string "
            "'package.module:attribute'",
        ),
        (
            '[[tool.deconvlint.models]]\ntarget = "pkg/models.py"\n',
            "pyproject.toml:2: error: tool.deconvlint.models[0].target: expected a string",
        ),
        (
            "[[tool.deconvlint.models]]\ninput-shape = [1, 3, 8, 8]\n",
            "pyproject.toml:1: error: tool.deconvlint.models[0]: missing key 'target'",
        ),
        (
            '[[tool.deconvlint.models]]\ntarget = "a:B"\n\n[[tool.deconvlint.models]]\n'
            'target = "c:D"\ninputs = [1, 3]\n',
            "pyproject.toml:6: error: tool.deconvlint.models[1].inputs: unknown key "
            "(known: target, kwargs, input-shape)",
        ),
        (
            '[[tool.deconvlint.models]]\ntarget = "a:B"\ninput-shape = [1, 0, 8]\n',
            "pyproject.toml:3: error: tool.deconvlint.models[0].input-shape: expected a list of "
            "positive integers",
        ),
        (
            '[[tool.deconvlint.models]]\ntarget = "a:B"\ninput-shape = "1,3,8,8"\n',
            "pyproject.toml:3: error: tool.deconvlint.models[0].input-shape: expected a list",
        ),
        (
            '[[tool.deconvlint.models]]\ntarget = "a:B"\nkwargs = [1]\n',
            "pyproject.toml:3: error: tool.deconvlint.models[0].kwargs: expected a table of "
            "keyword arguments, got list",
        ),
        (
            "[tool.deconvlint]\nmodels = [3]\n",
            "pyproject.toml:2: error: tool.deconvlint.models[0]: expected a table with target",
        ),
    ],
)
def test_models_errors_in_toml(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        toml(text)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  - target: pkg.models:Generator\n    input-shape: [1, -3]\n",
            ".deconvlint.yaml:3: error: models[0].input-shape: expected a list of positive",
        ),
        (
            "models:\n  - target: a:B\n  - kwargs: {x: 1}\n",
            ".deconvlint.yaml:3: error: models[1]: missing key 'target'",
        ),
        (
            "models:\n  - target: a:B\n    input-shape: [1, true]\n",
            ".deconvlint.yaml:3: error: models[0].input-shape: expected a list",
        ),
        ("models: {target: a:B}\n", ".deconvlint.yaml:1: error: models: expected a list"),
    ],
)
def test_models_errors_in_yaml(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        yaml(text)
    assert str(info.value).startswith(message), str(info.value)


def test_weights_true_turns_on_the_weight_rules(tmp_path: Path) -> None:
    path = tmp_path / ".deconvlint.yaml"
    path.write_text("weights: true\n", encoding="utf-8")
    assert "DL007" in enabled(merge(load_config(path), Options()))
    assert "DL007" not in enabled(merge(Options(), Options()))
    path.write_text("weights: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="weights: expected true or false"):
        load_config(path)


def test_readme_example_configuration_switches_on_only_what_it_names() -> None:
    """The README's example: select = ["DL00"] must not switch on DL007 (opt-in) by surprise;
    DL006 is on because the example names it exactly."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1]
    toml_block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    yaml_block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    for options in (toml(toml_block), yaml(yaml_block)):
        assert enabled(merge(options, Options())) == [
            "DL001", "DL002", "DL003", "DL004", "DL006", "DL008", "DL009"
        ]  # fmt: skip
