"""Configuration: find it, read it, check it against the rule catalogue, merge it with the flags.

Configuration lives in ``[tool.deconvlint]`` of a ``pyproject.toml`` or in a ``.deconvlint.yaml``.
The search starts in the current folder and goes upwards; the first folder that has either wins
(a ``pyproject.toml`` without a ``[tool.deconvlint]`` table does not count).  When one folder has
both, ``.deconvlint.yaml`` wins, as ruff's own ``ruff.toml`` wins over ``pyproject.toml``: a file
made for the tool alone is the more deliberate choice (the CLI warns that the other is ignored).

Every mistake is a :class:`~deconvlint.errors.ConfigError` whose text is one line naming the
file, the key and, where it can be found, the line::

    pyproject.toml:7: error: tool.deconvlint.select: unknown rule or prefix 'DL9'

>>> from deconvlint.rules.catalogue import RuleDoc, RuleOption
>>> doc = RuleDoc(id="DL004", name="output-coverage-variance", severity="warning", default=True,
...               summary="", sections={},
...               options=(RuleOption("max-cv", "float", 0.02, ""),))
>>> opts = parse_config_text('DL004:\\n  max-cv: 0.05\\nignore: [DL004]\\n', "x.yaml",
...                          catalogue={"DL004": doc})
>>> opts.rule_options, opts.ignore
({'DL004': {'max-cv': 0.05}}, ('DL004',))
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deconvlint.config.lines import KeyPath, key_name, parse_toml, parse_yaml, toml_lines
from deconvlint.config.settings import Settings
from deconvlint.errors import ConfigError
from deconvlint.report import SEVERITIES
from deconvlint.rules.catalogue import RuleDoc, load_catalogue

if TYPE_CHECKING:
    from deconvlint.frontends.target import ModelSpec

YAML_NAME = ".deconvlint.yaml"
PYPROJECT_NAME = "pyproject.toml"
TOML_TABLE = ("tool", "deconvlint")

_LIST_KEYS = ("select", "extend-select", "ignore")
_EXCLUDE_KEYS = ("exclude", "extend-exclude")
_KNOWN_KEYS = (
    *_LIST_KEYS,
    "fail-on",
    "per-node-ignores",
    "models",
    "weights",
    *_EXCLUDE_KEYS,
    "respect-gitignore",
)
_MODEL_KEYS = ("target", "kwargs", "input-shape")

# Option types of the catalogue -> the Python types a config value may have (bool is not a number).
_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "float": (int, float),
    "int": (int,),
    "bool": (bool,),
    "str": (str,),
}


@dataclass(frozen=True)
class Options:
    """Settings as written in one place (a config file or the command line), before merging.

    ``None`` means "not given here"; an empty tuple means "given, empty".
    """

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    fail_on: str | None = None
    per_node_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: tuple[ModelSpec, ...] = ()  # torch models to check when no path is given
    source: str | None = None  # the file these came from, for messages
    # which files a folder stands for (globs; see deconvlint.cli.discovery.Exclusion)
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool | None = None
    root: str | None = None  # the configuration's folder: path globs are relative to it


@dataclass(frozen=True)
class Discovered:
    """The configuration file that applies, if any, and what the search has to say about it."""

    path: Path | None
    warnings: tuple[str, ...] = ()


# --- finding the file -----------------------------------------------------------------------


def _has_tool_table(pyproject: Path) -> bool:
    data = parse_toml(pyproject.read_text(encoding="utf-8"), display_path(pyproject))
    return isinstance(data.get("tool"), dict) and "deconvlint" in data["tool"]


def discover_config(start: Path | None = None) -> Discovered:
    """The nearest configuration from ``start`` (default: the current folder) upwards.

    >>> import tempfile
    >>> discover_config(Path(tempfile.mkdtemp())).path is None or True
    True
    """
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        yaml_file = candidate / YAML_NAME
        pyproject = candidate / PYPROJECT_NAME
        has_yaml = yaml_file.is_file()
        has_table = pyproject.is_file() and _has_tool_table(pyproject)
        if has_yaml and has_table:
            note = (
                f"{display_path(pyproject)}: warning: [tool.deconvlint] is ignored because "
                f"{YAML_NAME} in the same folder takes precedence"
            )
            return Discovered(yaml_file, (note,))
        if has_yaml:
            return Discovered(yaml_file)
        if has_table:
            return Discovered(pyproject)
    return Discovered(None)


def display_path(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


# --- reading the file -----------------------------------------------------------------------


@dataclass
class _Source:
    """One configuration file being checked: where messages point and how keys are spelt."""

    shown: str
    prefix: tuple[str, ...]  # ("tool", "deconvlint") in a pyproject, () in YAML
    lines: dict[KeyPath, int]

    def fail(self, path: KeyPath, problem: str) -> ConfigError:
        line = None
        for depth in range(len(path), 0, -1):  # the key itself, else its nearest parent
            line = self.lines.get(path[:depth])
            if line is not None:
                break
        where = f"{self.shown}:{line}" if line is not None else self.shown
        key = key_name(self.prefix + path) or "top level"
        return ConfigError(f"{where}: error: {key}: {problem}")


def _type_name(value: Any) -> str:
    return {
        dict: "table",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "float",
    }.get(type(value), type(value).__name__)


def parse_selectors(values: Any, catalogue: Mapping[str, RuleDoc]) -> tuple[str, ...]:
    """Check rule ids or prefixes (``DL001``, ``DL00``, ``ALL``); raise ValueError on a bad one.

    >>> parse_selectors(["dl00"], {"DL001": None})
    ('DL00',)
    """
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(
            f'expected a list of rule ids like ["DL001"], got {_type_name(values)} {values!r}'
        )
    selectors = tuple(v.strip().upper() for v in values if v.strip())
    for sel in selectors:
        if sel != "ALL" and not any(rule_id.startswith(sel) for rule_id in catalogue):
            known = ", ".join(catalogue) or "none"
            raise ValueError(f"unknown rule or prefix {sel!r} (known rules: {known})")
    return selectors


def _check_options(source: _Source, rule: RuleDoc, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise source.fail((rule.id,), f"expected a table of options, got {_type_name(values)}")
    known = {o.name.replace("_", "-"): o for o in rule.options}
    checked: dict[str, Any] = {}
    for name, value in values.items():
        option = known.get(str(name).replace("_", "-"))
        if option is None:
            names = ", ".join(o.name for o in rule.options) or "none"
            raise source.fail(
                (rule.id, str(name)), f"unknown option for {rule.id} (its options: {names})"
            )
        allowed = _OPTION_TYPES.get(option.type)
        if allowed is not None and (
            (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed)
        ):
            raise source.fail(
                (rule.id, str(name)), f"expected {option.type}, got {_type_name(value)} {value!r}"
            )
        if option.type == "float" and not 0 <= float(value) < float("inf"):  # NaN fails too
            raise source.fail((rule.id, str(name)), f"expected a finite number >= 0, got {value!r}")
        checked[option.name] = float(value) if option.type == "float" else value
    return checked


def _check_model(source: _Source, path: KeyPath, entry: Any) -> ModelSpec:
    # only a configuration that lists models loads the targets module (not every run)
    from deconvlint.frontends.target import ModelSpec, is_module_target, shapes_from_config

    if not isinstance(entry, dict):
        raise source.fail(
            path, f"expected a table with {', '.join(_MODEL_KEYS)}, got {_type_name(entry)}"
        )
    checked: dict[str, Any] = {}
    for key, value in entry.items():
        name = str(key).replace("_", "-")
        where = (*path, str(key))
        if name == "target":
            if not isinstance(value, str) or not is_module_target(value.strip()):
                raise source.fail(
                    where,
                    "expected a string 'package.module:attribute' naming a torch.nn.Module "
                    f"class, a function returning one or an instance, got {_type_name(value)} "
                    f"{value!r}",
                )
            checked["target"] = value.strip()
        elif name == "kwargs":
            if not isinstance(value, dict):
                raise source.fail(
                    where, f"expected a table of keyword arguments, got {_type_name(value)}"
                )
            checked["kwargs"] = {str(k): v for k, v in value.items()}
        elif name == "input-shape":
            try:
                checked["input_shapes"] = shapes_from_config(value)
            except ValueError as exc:
                raise source.fail(where, str(exc)) from None
        else:
            raise source.fail(where, f"unknown key (known: {', '.join(_MODEL_KEYS)})")
    if "target" not in checked:
        raise source.fail(path, "missing key 'target' ('package.module:attribute')")
    return ModelSpec(**checked)


def _check_models(source: _Source, value: Any) -> tuple[ModelSpec, ...]:
    if not isinstance(value, list):
        raise source.fail(
            ("models",),
            "expected a list of tables ([[tool.deconvlint.models]] in TOML, a list in YAML), "
            f"got {_type_name(value)}",
        )
    return tuple(_check_model(source, ("models", i), entry) for i, entry in enumerate(value))


def _check(data: Any, source: _Source, catalogue: Mapping[str, RuleDoc]) -> Options:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise source.fail((), f"expected a table of settings, got {_type_name(data)}")
    lists: dict[str, tuple[str, ...]] = {}
    fail_on: str | None = None
    per_node: dict[str, tuple[str, ...]] = {}
    rule_options: dict[str, dict[str, Any]] = {}
    models: tuple[ModelSpec, ...] = ()
    weights = False
    globs: dict[str, tuple[str, ...]] = {}
    respect_gitignore: bool | None = None
    for key, value in data.items():
        key = str(key)
        if key in _EXCLUDE_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise source.fail((key,), f"expected a list of globs, got {_type_name(value)}")
            globs[key] = tuple(value)
        elif key == "respect-gitignore":
            if not isinstance(value, bool):
                raise source.fail((key,), f"expected true or false, got {_type_name(value)}")
            respect_gitignore = value
        elif key in _LIST_KEYS:
            try:
                lists[key] = parse_selectors(value, catalogue)
            except ValueError as exc:
                raise source.fail((key,), str(exc)) from None
        elif key == "fail-on":
            if value not in SEVERITIES:
                raise source.fail((key,), f"expected one of {', '.join(SEVERITIES)}, got {value!r}")
            fail_on = value
        elif key == "per-node-ignores":
            if not isinstance(value, dict):
                raise source.fail(
                    (key,),
                    "expected a table of node-name globs to lists of rule "
                    f"ids, got {_type_name(value)}",
                )
            for pattern, rules in value.items():
                try:
                    per_node[str(pattern)] = parse_selectors(rules, catalogue)
                except ValueError as exc:
                    raise source.fail((key, str(pattern)), str(exc)) from None
        elif key == "models":
            models = _check_models(source, value)
        elif key == "weights":
            if not isinstance(value, bool):
                raise source.fail((key,), f"expected true or false, got {_type_name(value)}")
            weights = value
        elif key in catalogue:
            rule_options[key] = _check_options(source, catalogue[key], value)
        else:
            hint = (
                "unknown rule"
                if re.fullmatch(r"[A-Za-z]+\d+", key)
                else f"unknown key (known: {', '.join(_KNOWN_KEYS)}, or a rule id)"
            )
            raise source.fail((key,), hint)
    if weights:
        # the rules that are off by default because they read weights
        weight_rules = [d.id for d in catalogue.values() if "weights" in d.needs and not d.default]
        lists["extend-select"] = (*lists.get("extend-select", ()), *weight_rules)
    return Options(
        select=lists.get("select"),
        extend_select=lists.get("extend-select"),
        ignore=lists.get("ignore"),
        fail_on=fail_on,
        per_node_ignores=per_node,
        rule_options=rule_options,
        models=models,
        source=source.shown,
        exclude=globs.get("exclude"),
        extend_exclude=globs.get("extend-exclude", ()),
        respect_gitignore=respect_gitignore,
    )


def parse_config_text(
    text: str,
    shown: str,
    *,
    kind: str | None = None,
    catalogue: Mapping[str, RuleDoc] | None = None,
) -> Options:
    """Parse and check one configuration file's text; ``kind`` is ``"yaml"`` or ``"toml"``.

    A ``.toml`` file is read from its ``[tool.deconvlint]`` table when it has one, else from its
    top level; a ``pyproject.toml`` must have the table.
    """
    catalogue = load_catalogue() if catalogue is None else catalogue
    kind = kind or ("toml" if shown.endswith(".toml") else "yaml")
    if kind == "yaml":
        data, lines = parse_yaml(text, shown)
        return _check(data, _Source(shown, (), lines), catalogue)
    document = parse_toml(text, shown)
    tool = document.get("tool")
    if isinstance(tool, dict) and "deconvlint" in tool:
        return _check(
            tool["deconvlint"], _Source(shown, TOML_TABLE, toml_lines(text, TOML_TABLE)), catalogue
        )
    if Path(shown).name == PYPROJECT_NAME:
        raise ConfigError(f"{shown}: error: tool.deconvlint: no [tool.deconvlint] table")
    return _check(document, _Source(shown, (), toml_lines(text, ())), catalogue)


def load_config(path: Path, catalogue: Mapping[str, RuleDoc] | None = None) -> Options:
    """Read and check the configuration file at ``path``."""
    shown = display_path(path) if path.is_absolute() else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: error: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{shown}: error: cannot read configuration: {cause}") from None
    kind = "toml" if path.suffix == ".toml" else "yaml"
    options = parse_config_text(text, shown, kind=kind, catalogue=catalogue)
    # Listed models import from the configuration's folder too, wherever deconvlint runs.
    folder = str(path.resolve().parent)
    return replace(
        options,
        models=tuple(replace(m, import_dir=folder) for m in options.models),
        root=folder,
    )


# --- merging ----------------------------------------------------------------------------------


def _matching(
    selectors: Sequence[str], rule_ids: Sequence[str], opt_in: Collection[str] = ()
) -> set[str]:
    # an opt-in rule (off by default) is selected by its exact id only, never by a prefix
    return {
        r
        for r in rule_ids
        if (
            r in selectors if r in opt_in else any(s == "ALL" or r.startswith(s) for s in selectors)
        )
    }


def _apply_layer(
    enabled: set[str], layer: Options, rule_ids: Sequence[str], opt_in: Collection[str]
) -> set[str]:
    # As in ruff: a layer's `select` starts over, `extend-select` adds, `ignore` removes.
    if layer.select is not None:
        enabled = _matching(layer.select, rule_ids, opt_in)
    enabled = enabled | _matching(layer.extend_select or (), rule_ids, opt_in)
    return enabled - _matching(layer.ignore or (), rule_ids)


def merge(
    config: Options, flags: Options, catalogue: Mapping[str, RuleDoc] | None = None
) -> Settings:
    """One :class:`Settings` from the configuration file and the flags; the flags win.

    Rule selection is resolved to explicit rule ids: the catalogue's defaults, then the file's
    ``select``/``extend-select``/``ignore``, then the flags' (a ``--select`` starts over, so
    ``--select DL004`` runs DL004 even when the file ignores it).

    >>> from deconvlint.rules.catalogue import RuleDoc
    >>> cat = {i: RuleDoc(id=i, name=i, severity="warning", default=i != "DL006", summary="",
    ...                   sections={}) for i in ("DL001", "DL004", "DL006")}
    >>> merge(Options(ignore=("DL004",)), Options(extend_select=("DL006",)), cat).select
    ('DL001', 'DL006')
    """
    catalogue = load_catalogue() if catalogue is None else catalogue
    layers = (config, flags)
    if any(
        x.select is not None or x.extend_select is not None or x.ignore is not None for x in layers
    ):
        rule_ids = list(catalogue)
        enabled = {r for r, doc in catalogue.items() if doc.default}
        opt_in = {r for r, doc in catalogue.items() if not doc.default}
        for layer in layers:
            enabled = _apply_layer(enabled, layer, rule_ids, opt_in)
        select: tuple[str, ...] | None = tuple(sorted(enabled))
    else:
        select = None
    return Settings(
        select=select,
        fail_on=flags.fail_on or config.fail_on or "warning",
        per_node_ignores={**config.per_node_ignores, **flags.per_node_ignores},
        rule_options={
            rule: {**config.rule_options.get(rule, {}), **flags.rule_options.get(rule, {})}
            for rule in {*config.rule_options, *flags.rule_options}
        },
    )
