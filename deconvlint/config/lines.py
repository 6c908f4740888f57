"""Parse a configuration file's text and find the line of every key, for one-line error messages.

tomllib gives no positions, so the TOML line finder reads the text itself (best effort: keys in
``[table]`` and ``[[array.of.tables]]`` sections and dotted keys; a key inside an inline table
points at the line of its nearest parent).  PyYAML gives positions through its node tree.

A key is addressed by its path: strings for table keys, integers for list positions, so the
second ``[[tool.deconvlint.models]]`` entry's ``target`` is ``("models", 1, "target")``.

>>> lines = toml_lines('[[tool.deconvlint.models]]\\ntarget = "a:B"\\n\\n'
...                    '[[tool.deconvlint.models]]\\ntarget = "c:D"\\n', ("tool", "deconvlint"))
>>> lines[("models", 1, "target")]
5
>>> key_name(("tool", "deconvlint", "models", 1, "input-shape"))
'tool.deconvlint.models[1].input-shape'
"""

from __future__ import annotations

import re
import sys
from typing import Any

from deconvlint.errors import ConfigError

KeyPath = tuple[str | int, ...]

_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def key_name(path: KeyPath) -> str:
    """A key path as people write it: ``tool.deconvlint.models[0].target``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            text += f".{name}" if text else name
    return text


def parse_toml(text: str, shown: str) -> dict[str, Any]:
    """The TOML document; a syntax error is a :class:`ConfigError` naming ``shown`` and the line."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{shown}: error: invalid TOML: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column \d+\)", message)
        cause = re.sub(r"\s*\(at line \d+, column \d+\)", "", message) or "parse error"
        where = f"{shown}:{match.group(1)}" if match else shown
        raise ConfigError(f"{where}: error: invalid TOML: {cause}") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{_long_number_line(text, shown)}: error: invalid TOML: {exc}") from None


def _yaml_lines(node: Any, prefix: KeyPath, out: dict[KeyPath, int]) -> None:
    """Record the 1-based line of every mapping key and list item, by its key path."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            out.setdefault(path, key_node.start_mark.line + 1)
            _yaml_lines(value_node, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            out.setdefault(path, item.start_mark.line + 1)
            _yaml_lines(item, path, out)


#: Deepest nesting a configuration may have (it needs 4: models, an entry, kwargs, a value).
MAX_YAML_DEPTH = 32


def _long_number_line(text: str, shown: str) -> str:
    """``shown:line`` of the first number too long for Python to convert, else ``shown``."""
    match = re.search(r"\d{4000,}", text)
    return f"{shown}:{text.count(chr(10), 0, match.start()) + 1}" if match else shown


def _refuse_aliases_and_depth(text: str, shown: str) -> None:
    """YAML aliases can expand a few lines into billions of items ("billion laughs"); a
    configuration needs none.  Deep nesting overflows the recursive constructors, and a key
    given twice would silently lose its first value."""
    import yaml

    # one frame per open collection: a mapping's keys and whether a key comes next; None for a
    # sequence
    frames: list[tuple[set[str], list[bool]] | None] = []

    def node_done() -> None:  # in a mapping, key and value alternate
        if frames and frames[-1] is not None:
            frames[-1][1][0] = not frames[-1][1][0]

    for event in yaml.parse(text, Loader=safe_loader()):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(
                f"{shown}:{line}: error: invalid YAML: aliases (*{event.anchor}) are not "
                f"allowed in a configuration"
            )
        if isinstance(event, yaml.ScalarEvent):
            frame = frames[-1] if frames else None
            if frame is not None and frame[1][0]:
                if event.value in frame[0]:
                    raise ConfigError(
                        f"{shown}:{line}: error: invalid YAML: key {event.value!r} given twice"
                    )
                frame[0].add(event.value)
            node_done()
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(frames) >= MAX_YAML_DEPTH:
                raise ConfigError(f"{shown}:{line}: error: invalid YAML: nested too deeply")
            is_mapping = isinstance(event, yaml.MappingStartEvent)
            frames.append((set(), [True]) if is_mapping else None)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frames.pop()
            node_done()


def safe_loader() -> Any:
    """PyYAML's safe loader, in C (libyaml) when PyYAML was built with it: the same documents,
    some 5 times faster, which a configuration of 50,000 ``per-node-ignores`` globs feels."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, shown: str) -> tuple[Any, dict[KeyPath, int]]:
    """The YAML document (read safely) and the line of every key: the text is parsed twice,
    once for the checks of :func:`_refuse_aliases_and_depth`, once into the node tree that
    gives both the data and the lines."""
    import yaml

    try:
        _refuse_aliases_and_depth(text, shown)
        loader = safe_loader()(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "nesting depth" in problem:  # libyaml's own limit, which it may meet first
            problem = "nested too deeply"
        raise ConfigError(f"{where}: error: invalid YAML: {problem}") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{_long_number_line(text, shown)}: error: invalid YAML: {exc}") from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _yaml_lines(node, (), lines)
    return data, lines


def _toml_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[^.\s]+""", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _with_indices(dotted: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> KeyPath:
    """Insert the current index after every prefix that names an array of tables."""
    path: list[str | int] = []
    for depth, part in enumerate(dotted, start=1):
        path.append(part)
        if dotted[:depth] in arrays:
            path.append(arrays[dotted[:depth]])
    return tuple(path)


def toml_lines(text: str, table: tuple[str, ...]) -> dict[KeyPath, int]:
    """Best-effort 1-based lines of the keys below ``table`` (see the module docstring)."""
    lines: dict[KeyPath, int] = {}
    arrays: dict[tuple[str, ...], int] = {}  # array-of-tables header -> index of its last entry
    current: KeyPath = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TOML_HEADER.match(line)
        if header:
            dotted = _toml_dotted(header.group(2))
            if header.group(1) == "[[":
                arrays[dotted] = arrays.get(dotted, -1) + 1
            current = _with_indices(dotted, arrays)
            if current[: len(table)] == table and len(current) > len(table):
                if header.group(1) == "[[":  # the array itself is where its first entry starts
                    lines.setdefault(current[len(table) : -1], number)
                lines.setdefault(current[len(table) :], number)
            continue
        key = _TOML_KEY.match(line)
        if key and current[: len(table)] == table:
            path = current[len(table) :] + _toml_dotted(key.group(1))
            lines.setdefault(path, number)
    return lines
