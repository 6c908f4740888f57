"""Configuration: find it, read it, check it against the rule catalogue, merge it with the flags.

Configuration lives in ``[tool.deconvlint]`` of a ``pyproject.toml`` or in a ``.deconvlint.yaml``.
The search starts in the current folder and goes upwards; the first folder that has either wins
(a ``pyproject.toml`` without a ``[tool.deconvlint]`` table does not count).  When one folder has
both, ``.deconvlint.yaml`` wins, as ruff's own ``ruff.toml`` wins over ``pyproject.toml``: a file
made for the tool alone is the more deliberate choice (the CLI warns that the other is ignored).

Every mistake is a :class:`~deconvlint.errors.ConfigError` whose text is one line naming the
file, the key and, where it can be found, the line::

    pyproject.toml:7: error: tool.deconvlint.select: unknown rule or prefix 'DL9'

>>> from deconvlint.catalogue import RuleDoc, RuleOption
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
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deconvlint.catalogue import RuleDoc, load_catalogue
from deconvlint.errors import ConfigError
from deconvlint.report import SEVERITIES
from deconvlint.settings import Settings

YAML_NAME = ".deconvlint.yaml"
PYPROJECT_NAME = "pyproject.toml"
TOML_TABLE = ("tool", "deconvlint")

_LIST_KEYS = ("select", "extend-select", "ignore")
_KNOWN_KEYS = (*_LIST_KEYS, "fail-on", "per-node-ignores")

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
    source: str | None = None  # the file these came from, for messages


@dataclass(frozen=True)
class Discovered:
    """The configuration file that applies, if any, and what the search has to say about it."""

    path: Path | None
    warnings: tuple[str, ...] = ()


# --- finding the file -----------------------------------------------------------------------


def _has_tool_table(pyproject: Path) -> bool:
    data = _parse_toml(pyproject.read_text(encoding="utf-8"), display_path(pyproject))
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


def _parse_toml(text: str, shown: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column \d+\)", message)
        cause = re.sub(r"\s*\(at line \d+, column \d+\)", "", message) or "parse error"
        where = f"{shown}:{match.group(1)}" if match else shown
        raise ConfigError(f"{where}: error: invalid TOML: {cause}") from exc


def _yaml_lines(node: Any, prefix: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    """Record the 1-based line of every mapping key, by its path of keys."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            out.setdefault(path, key_node.start_mark.line + 1)
            _yaml_lines(value_node, path, out)


def _parse_yaml(text: str, shown: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    import yaml

    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: error: invalid YAML: {problem}") from exc
    lines: dict[tuple[str, ...], int] = {}
    _yaml_lines(node, (), lines)
    return data, lines


_TOML_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def _toml_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[^.\s]+""", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _toml_lines(text: str, table: tuple[str, ...]) -> dict[tuple[str, ...], int]:
    """Best-effort 1-based lines of the keys below ``table`` (tomllib gives no positions)."""
    lines: dict[tuple[str, ...], int] = {}
    current: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TOML_HEADER.match(line)
        if header:
            current = _toml_dotted(header.group(1))
            if current[: len(table)] == table and len(current) > len(table):
                lines.setdefault(current[len(table) :], number)
            continue
        key = _TOML_KEY.match(line)
        if key and current[: len(table)] == table:
            path = current[len(table) :] + _toml_dotted(key.group(1))
            lines.setdefault(path, number)
    return lines


@dataclass
class _Source:
    """One configuration file being checked: where messages point and how keys are spelt."""

    shown: str
    prefix: tuple[str, ...]  # ("tool", "deconvlint") in a pyproject, () in YAML
    lines: dict[tuple[str, ...], int]

    def fail(self, path: tuple[str, ...], problem: str) -> ConfigError:
        line = None
        for depth in range(len(path), 0, -1):  # the key itself, else its nearest parent
            line = self.lines.get(path[:depth])
            if line is not None:
                break
        where = f"{self.shown}:{line}" if line is not None else self.shown
        key = _key_name(self.prefix + path) or "top level"
        return ConfigError(f"{where}: error: {key}: {problem}")


def _key_name(path: tuple[str, ...]) -> str:
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else f'"{p}"' for p in path)


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
        checked[option.name] = float(value) if option.type == "float" else value
    return checked


def _check(data: Any, source: _Source, catalogue: Mapping[str, RuleDoc]) -> Options:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise source.fail((), f"expected a table of settings, got {_type_name(data)}")
    lists: dict[str, tuple[str, ...]] = {}
    fail_on: str | None = None
    per_node: dict[str, tuple[str, ...]] = {}
    rule_options: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        key = str(key)
        if key in _LIST_KEYS:
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
        elif key in catalogue:
            rule_options[key] = _check_options(source, catalogue[key], value)
        else:
            hint = (
                "unknown rule"
                if re.fullmatch(r"[A-Za-z]+\d+", key)
                else f"unknown key (known: {', '.join(_KNOWN_KEYS)}, or a rule id)"
            )
            raise source.fail((key,), hint)
    return Options(
        select=lists.get("select"),
        extend_select=lists.get("extend-select"),
        ignore=lists.get("ignore"),
        fail_on=fail_on,
        per_node_ignores=per_node,
        rule_options=rule_options,
        source=source.shown,
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
        data, lines = _parse_yaml(text, shown)
        return _check(data, _Source(shown, (), lines), catalogue)
    document = _parse_toml(text, shown)
    tool = document.get("tool")
    if isinstance(tool, dict) and "deconvlint" in tool:
        return _check(
            tool["deconvlint"], _Source(shown, TOML_TABLE, _toml_lines(text, TOML_TABLE)), catalogue
        )
    if Path(shown).name == PYPROJECT_NAME:
        raise ConfigError(f"{shown}: error: tool.deconvlint: no [tool.deconvlint] table")
    return _check(document, _Source(shown, (), _toml_lines(text, ())), catalogue)


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
    return parse_config_text(text, shown, kind=kind, catalogue=catalogue)


# --- merging ----------------------------------------------------------------------------------


def _matching(selectors: Sequence[str], rule_ids: Sequence[str]) -> set[str]:
    return {r for r in rule_ids if any(s == "ALL" or r.startswith(s) for s in selectors)}


def _apply_layer(enabled: set[str], layer: Options, rule_ids: Sequence[str]) -> set[str]:
    # As in ruff: a layer's `select` starts over, `extend-select` adds, `ignore` removes.
    if layer.select is not None:
        enabled = _matching(layer.select, rule_ids)
    enabled = enabled | _matching(layer.extend_select or (), rule_ids)
    return enabled - _matching(layer.ignore or (), rule_ids)


def merge(
    config: Options, flags: Options, catalogue: Mapping[str, RuleDoc] | None = None
) -> Settings:
    """One :class:`Settings` from the configuration file and the flags; the flags win.

    Rule selection is resolved to explicit rule ids: the catalogue's defaults, then the file's
    ``select``/``extend-select``/``ignore``, then the flags' (a ``--select`` starts over, so
    ``--select DL004`` runs DL004 even when the file ignores it).

    >>> from deconvlint.catalogue import RuleDoc
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
        for layer in layers:
            enabled = _apply_layer(enabled, layer, rule_ids)
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
