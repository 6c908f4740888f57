"""The rules package: one module per rule, one explicit list, and no rule id written anywhere
else in the package (the catalogue's metadata says what the rest of deconvlint needs to know)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from deconvlint.rules import registry
from deconvlint.rules.catalogue import (
    FIXES,
    NEEDS,
    PATTERNS,
    SCOPES,
    SOURCE_MODES,
    load_catalogue,
    read_yaml_catalogue,
    rules_where,
)

PACKAGE = Path(registry.__file__).resolve().parents[1]
RULE_MODULE = re.compile(r"dl(\d{3})_(\w+)\.py")


def test_every_rule_module_is_listed_once_under_its_catalogue_id_and_name() -> None:
    files = sorted(p.name for p in (PACKAGE / "rules").glob("dl*.py"))
    listed = [Path(m.__file__).name for m in registry.RULE_MODULES]
    assert listed == files, "RULE_MODULES must list every rules/dlNNN_*.py once, in id order"
    catalogue = load_catalogue()
    assert sorted(registry.RULES) == sorted(catalogue)
    for module in registry.RULE_MODULES:
        number, name = RULE_MODULE.fullmatch(Path(module.__file__).name).groups()
        assert f"DL{number}" == module.RULE_ID
        assert catalogue[module.RULE_ID].name == name.replace("_", "-")


def test_no_rule_id_is_a_key_outside_the_rule_modules() -> None:
    """A string that is exactly a rule id (``"DL003"``) in package code outside its rule's
    module is a table keyed by id: that belongs in the rule's catalogue metadata.  Ids inside
    prose (help texts, messages, docstrings) are fine."""
    keyed = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if RULE_MODULE.fullmatch(path.name):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and re.fullmatch(r"DL\d{3}", str(node.value)):
                keyed.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
    assert keyed == []


def test_the_metadata_of_every_rule_takes_known_values() -> None:
    for doc in load_catalogue().values():
        assert doc.scope in SCOPES and doc.pattern in PATTERNS, doc.id
        assert doc.source in SOURCE_MODES and doc.fix in FIXES, doc.id
        assert set(doc.needs) <= set(NEEDS), doc.id


@pytest.mark.parametrize(
    ("key", "value"),
    [("scope", "graph"), ("pattern", "colour"), ("source", "maybe"), ("fix", "sometimes")],
)
def test_a_metadata_value_outside_its_set_is_refused_naming_the_rule(key: str, value: str) -> None:
    from deconvlint.rules import catalogue

    raw = dict(read_yaml_catalogue()["DL001"], **{key: value})
    with pytest.raises(ValueError, match=rf"DL001: {key} is '{value}'"):
        catalogue._rule_doc(raw)


def test_what_the_metadata_selects_is_what_the_rules_do() -> None:
    """The sets the rest of deconvlint derives from the metadata, spelled out once here."""
    assert rules_where(source="single") == ("DL001", "DL002", "DL005")
    assert rules_where(source=("single", "chain")) == ("DL001", "DL002", "DL003", "DL005")
    assert rules_where(scope="output") == ("DL004",)
    assert rules_where(pattern="coverage") == ("DL001", "DL002", "DL003", "DL004")
    assert rules_where(fix="safe") == ("DL005",)
    weight_rules = [d.id for d in load_catalogue().values() if "weights" in d.needs]
    assert weight_rules == ["DL007", "DL008"]
    assert rules_where(pattern="measured") == ("DL009",)
