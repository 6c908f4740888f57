"""The one settings resolver, for the command line and the Python API alike.

The layers, as in ruff: the catalogue's defaults, then the configuration file (given, or the
nearest one from the current folder upwards), then the flags or keywords: ``select`` starts
over, ``extend_select`` adds, ``ignore`` removes, ``fail_on`` replaces.

>>> from deconvlint.config.settings import Settings
>>> resolve_settings(Settings(), select="DL001,DL004", extend_select=["DL003"]).settings.select
('DL001', 'DL003', 'DL004')
>>> resolve_settings(Settings(), select="DL999")  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
deconvlint.errors.ConfigError: select: unknown rule or prefix 'DL999' (known rules: DL001, ...)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deconvlint.config.load import Options, discover_config, load_config, merge, parse_selectors
from deconvlint.config.settings import Settings
from deconvlint.errors import ConfigError
from deconvlint.report import SEVERITIES
from deconvlint.rules.catalogue import RuleDoc, load_catalogue


@dataclass(frozen=True)
class Resolved:
    """The configuration file's own options (its models, its exclusions), the settings merged
    from it and the flags, and any warnings about the file."""

    config: Options
    settings: Settings
    notes: tuple[str, ...] = ()


def _keyword(name: str) -> str:
    return name


def resolve_settings(
    config: str | os.PathLike | Settings | None = None,
    *,
    select: str | Iterable[str] | None = None,
    extend_select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    fail_on: str | None = None,
    spell: Callable[[str], str] = _keyword,
    warn: Callable[[str], None] | None = None,
) -> Resolved:
    """The settings from ``config`` (a file, a :class:`Settings`, or ``None`` for the file found
    from the current folder upwards), then the flags; a wrong value is a :class:`ConfigError`
    whose message starts with ``spell(name)`` (``"select"``, ``"fail_on"``, ...).  ``warn``
    is called with each warning about the discovered file as soon as it is found (before the
    file is read, which may fail).

    A selector is a rule id or prefix: ``"DL001,DL003"``, ``"DL00"``, ``["DL001", "DL003"]``.
    """
    catalogue = load_catalogue()
    notes: tuple[str, ...] = ()
    if isinstance(config, Settings):
        file_layer = _options_of(config, catalogue)
    elif config is not None:
        file_layer = load_config(Path(os.fspath(config)), catalogue)
    else:
        found = discover_config()
        notes = found.warnings
        for note in notes if warn is not None else ():
            warn(note)
        file_layer = Options() if found.path is None else load_config(found.path, catalogue)
    if fail_on is not None and fail_on not in SEVERITIES:
        raise ConfigError(
            f"{spell('fail_on')}: expected one of {', '.join(SEVERITIES)}, got {fail_on!r}"
        )
    flags = Options(
        select=_selectors(spell("select"), select, catalogue),
        extend_select=_selectors(spell("extend_select"), extend_select, catalogue),
        ignore=_selectors(spell("ignore"), ignore, catalogue),
        fail_on=fail_on,
    )
    return Resolved(file_layer, merge(file_layer, flags, catalogue), notes)


def _selectors(
    name: str, value: str | Iterable[str] | None, catalogue: Mapping[str, RuleDoc]
) -> tuple[str, ...] | None:
    if value is None:
        return None
    values: Any = value.split(",") if isinstance(value, str) else value
    if not isinstance(values, list) and isinstance(values, Iterable):
        values = list(values)  # a tuple or a set; parse_selectors names anything else
    try:
        return parse_selectors(values, catalogue)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _options_of(settings: Settings, catalogue: Mapping[str, RuleDoc]) -> Options:
    """A resolved :class:`Settings` as the file layer of a merge: its rules spelt out."""
    enabled = tuple(r for r, doc in catalogue.items() if settings.is_enabled(r, doc.default))
    return Options(
        select=enabled,
        fail_on=settings.fail_on,
        per_node_ignores=dict(settings.per_node_ignores),
        rule_options={rule: dict(opts) for rule, opts in settings.rule_options.items()},
    )
