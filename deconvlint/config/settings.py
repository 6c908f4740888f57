"""Resolved settings: which rules run, what fails the run, and per-rule options.

The CLI and the config loader (:mod:`deconvlint.config.load`) build one :class:`Settings`; the engine
only reads it.

>>> s = Settings(select=("DL00",), ignore=("DL005",))
>>> s.is_enabled("DL001"), s.is_enabled("DL005"), s.is_enabled("DL006", default=False)
(True, False, False)
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_WILDCARDS = "*?["


def _matches(rule_id: str, selectors: tuple[str, ...], exact: bool = False) -> bool:
    # A selector is a rule id or a prefix of one ("DL", "DL00"), as in ruff; "ALL" selects all.
    # An opt-in rule is selected only by its exact id (``exact``), as ruff's preview rules are
    # with explicit-preview-rules: a prefix never switches it on by surprise.
    if exact:
        return rule_id in selectors
    return any(sel == "ALL" or rule_id.startswith(sel) for sel in selectors)


class GlobSet:
    """Many ``fnmatch`` globs matched at once, with :func:`fnmatch.fnmatchcase`'s meaning, in
    time that does not grow with their number for the usual globs.

    A glob without a wildcard is a name looked up in a set.  Any other is filed under the
    literal text it starts with (``decoder.*`` under ``decoder.``) or, when it starts with a
    wildcard, under the literal text it ends with (``*.up1`` under ``.up1``): a name can only
    match the globs filed under one of its own beginnings or ends, and each such group is one
    regular expression, compiled the first time a name reaches it.  Globs with a wildcard at
    both ends form one last group.

    >>> globs = GlobSet(["decoder.up1", "decoder.*", "*.conv[12]", "*_*"])
    >>> [globs.matches(n) for n in ("decoder.x", "enc.conv2", "enc.conv3", "enc_9", "enc")]
    [True, True, False, True, False]
    """

    def __init__(self, globs: Iterable[str]) -> None:
        self.names: set[str] = set()
        self._by_prefix: dict[str, list[str]] = {}
        self._by_suffix: dict[str, list[str]] = {}
        self._others: list[str] = []
        for glob in globs:
            first = min((i for i in map(glob.find, _WILDCARDS) if i >= 0), default=-1)
            if first < 0:
                self.names.add(glob)
            elif first > 0:
                self._by_prefix.setdefault(glob[:first], []).append(glob)
            elif suffix := glob[max(map(glob.rfind, _WILDCARDS + "]")) + 1 :]:
                self._by_suffix.setdefault(suffix, []).append(glob)
            else:
                self._others.append(glob)
        self._prefix_lengths = sorted({len(p) for p in self._by_prefix})
        self._suffix_lengths = sorted({len(s) for s in self._by_suffix})
        self._compiled: dict[tuple[str, str], re.Pattern[str]] = {}

    def _group(self, key: tuple[str, str], globs: list[str]) -> re.Pattern[str]:
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))
            self._compiled[key] = compiled
        return compiled

    def matches(self, name: str) -> bool:
        """Whether any glob matches ``name`` (as ``fnmatch.fnmatchcase`` would)."""
        if name in self.names:
            return True
        for length in self._prefix_lengths:
            if length > len(name):
                break
            globs = self._by_prefix.get(name[:length])
            if globs and self._group(("prefix", name[:length]), globs).match(name):
                return True
        for length in self._suffix_lengths:
            if length > len(name):
                break
            globs = self._by_suffix.get(name[len(name) - length :])
            if globs and self._group(("suffix", name[len(name) - length :]), globs).match(name):
                return True
        return bool(self._others) and bool(self._group(("", ""), self._others).match(name))


class NodeIgnores:
    """``per-node-ignores`` compiled once: per rule id, the :class:`GlobSet` of the globs whose
    rules name it."""

    def __init__(self, globs: Mapping[str, tuple[str, ...]]) -> None:
        self._globs = globs
        self._by_rule: dict[str, GlobSet] = {}

    def ignores(self, rule_id: str, node: str) -> bool:
        found = self._by_rule.get(rule_id)
        if found is None:
            found = GlobSet(g for g, rules in self._globs.items() if _matches(rule_id, rules))
            self._by_rule[rule_id] = found
        return found.matches(node)


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] | None = None  # None: the catalogue's default selection
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: str = "warning"
    per_node_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # --probe: run the model on smooth inputs and measure the artifacts (rule DL009)
    probe: bool = False
    probe_input_shapes: tuple[tuple[int, ...], ...] = ()

    def is_enabled(self, rule_id: str, default: bool = True) -> bool:
        """Whether ``rule_id`` runs: selected (or default-on), not ignored."""
        opt_in = not default
        selected = default if self.select is None else _matches(rule_id, self.select, opt_in)
        selected = selected or _matches(rule_id, self.extend_select, opt_in)
        return selected and not _matches(rule_id, self.ignore)

    def is_ignored_for_node(self, rule_id: str, node: str) -> bool:
        """Whether a ``per-node-ignores`` glob on ``node`` names ``rule_id``."""
        return bool(self.per_node_ignores) and self._node_ignores.ignores(rule_id, node)

    @functools.cached_property
    def _node_ignores(self) -> NodeIgnores:
        return NodeIgnores(self.per_node_ignores)

    def option(self, rule_id: str, name: str, default: Any) -> Any:
        return self.rule_options.get(rule_id, {}).get(name, default)
