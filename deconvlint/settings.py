"""Resolved settings: which rules run, what fails the run, and per-rule options.

The CLI and the config loader (:mod:`deconvlint.config`) build one :class:`Settings`; the engine
only reads it.

>>> s = Settings(select=("DL00",), ignore=("DL005",))
>>> s.is_enabled("DL001"), s.is_enabled("DL005"), s.is_enabled("DL006", default=False)
(True, False, False)
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any


def _matches(rule_id: str, selectors: tuple[str, ...], exact: bool = False) -> bool:
    # A selector is a rule id or a prefix of one ("DL", "DL00"), as in ruff; "ALL" selects all.
    # An opt-in rule is selected only by its exact id (``exact``), as ruff's preview rules are
    # with explicit-preview-rules: a prefix never switches it on by surprise.
    if exact:
        return rule_id in selectors
    return any(sel == "ALL" or rule_id.startswith(sel) for sel in selectors)


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
        return any(
            fnmatch.fnmatchcase(node, pattern) and _matches(rule_id, rules)
            for pattern, rules in self.per_node_ignores.items()
        )

    def option(self, rule_id: str, name: str, default: Any) -> Any:
        return self.rule_options.get(rule_id, {}).get(name, default)
