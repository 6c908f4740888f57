"""The rule catalogue: one YAML file per rule in ``rules/``, shipped inside the wheel.

Every rule's documentation (``--explain``), default severity, options and its ``flag:``/``clean:``
examples come from here, never from a second copy.  The checker reads them pre-parsed, from
``catalogue.json`` beside this module, so that no run needs PyYAML to start (parsing the YAML
cost more than the rest of deconvlint's own start-up).  That file is generated from the YAML by
``python -m deconvlint.rules.catalogue``; a test fails when it differs from the YAML.

>>> load_catalogue()["DL001"].name
'uneven-overlap'
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The catalogue, pre-parsed from the YAML files (rule id -> the rule's YAML mapping).
CATALOGUE_JSON = Path(__file__).parent / "catalogue.json"

# Sections of --explain, in ruff's order.
DOC_SECTIONS = (
    ("what_it_does", "What it does"),
    ("why_is_this_bad", "Why is this bad?"),
    ("example", "Example"),
    ("use_instead", "Use instead"),
    ("fix_safety", "Fix safety"),
)


@dataclass(frozen=True)
class RuleOption:
    name: str
    type: str  # "float" | "int" | "bool" | "str"
    default: Any
    description: str


@dataclass(frozen=True)
class Example:
    """A chain (in :mod:`deconvlint.core.chainspec` form) and the severity the rule must give it
    (``None``: the rule's default severity); ``probe``: run as an ONNX model with all-ones
    weights under ``--probe``."""

    chain: str
    severity: str | None = None
    probe: bool = False


@dataclass(frozen=True)
class RuleDoc:
    id: str
    name: str
    severity: str
    default: bool  # part of the default selection
    summary: str
    sections: dict[str, str]
    options: tuple[RuleOption, ...] = ()
    references: tuple[str, ...] = ()
    flag: tuple[Example, ...] = ()  # chains the rule must fire on
    clean: tuple[Example, ...] = ()  # chains the rule must stay silent on
    extra: dict[str, Any] = field(default_factory=dict)
    # the switch that runs the rule besides its exact id: "--probe", "weights = true"
    enabled_by: str | None = None
    # What the rest of deconvlint asks of a rule, so that nothing else is keyed by its id:
    scope: str = "layer"  # what a finding blames: "layer", "stack" (metrics["nodes"]), "output"
    pattern: str = "coverage"  # what it measures: see PATTERNS
    source: str = "none"  # Python source mode: "single" (a call alone), "chain", "none"
    needs: tuple[str, ...] = ()  # "weights" (reads trained weights), "probe" (--probe runs)
    fix: str = "none"  # what --fix may do: "safe", "unsafe" (kernel shapes change), "none"

    @property
    def runs(self) -> str:
        """When the rule runs, as ``--list-rules`` shows it: ``on``, ``off`` or its switch
        (a rule that needs ``--probe`` runs only with it, whatever the selection)."""
        if self.default:
            return self.enabled_by or "on"
        return "off"

    def option_default(self, name: str) -> Any:
        for opt in self.options:
            if opt.name == name:
                return opt.default
        raise KeyError(f"{self.id} has no option {name!r}")

    def explain(self) -> str:
        """The ``--explain`` text, under ruff's headings."""
        lines = [f"# {self.name} ({self.id})", "", f"Default severity: {self.severity}."]
        if not self.default:
            switch = f" or `{self.enabled_by}`" if self.enabled_by else ""
            lines.append(
                f"Not in the default selection: enable with `--extend-select {self.id}`{switch} "
                "(a prefix such as `DL00` or `ALL` does not select it)."
            )
        elif self.enabled_by:
            lines.append(f"Runs only with `{self.enabled_by}`.")
        lines.append("")
        lines.append(self.summary.strip())
        for key, heading in DOC_SECTIONS:
            text = self.sections.get(key, "").strip()
            if text:
                lines += ["", f"## {heading}", text]
        if self.options:
            lines += ["", "## Options"]
            lines += [
                f"- `{o.name}` ({o.type}, default {o.default!r}): {o.description.strip()}"
                for o in self.options
            ]
        if self.references:
            lines += ["", "## References"] + [f"- {r}" for r in self.references]
        return "\n".join(lines) + "\n"


def catalogue_dir() -> Path:
    """The folder holding the rule YAML files: inside the installed package, else the repo's."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_catalogue"
    if packaged.is_dir():
        return packaged
    return package.parent / "rules"


#: The values each metadata key of a rule's YAML may take.
SCOPES = ("layer", "stack", "output")
PATTERNS = ("coverage", "footprint", "gradient", "weights", "measured")
SOURCE_MODES = ("single", "chain", "none")
NEEDS = ("weights", "probe")
FIXES = ("safe", "unsafe", "none")


def _one_of(rule_id: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{rule_id}: {key} is {value!r}, not one of {', '.join(allowed)}")
    return value


def _example(entry: Any) -> Example:
    if isinstance(entry, str):
        return Example(entry)
    return Example(entry["chain"], entry.get("severity"), bool(entry.get("probe", False)))


def read_yaml_catalogue(folder: Path | None = None) -> dict[str, Any]:
    """Every ``DL*.yaml`` of ``folder`` (default :func:`catalogue_dir`) as parsed YAML, by id."""
    import yaml

    # libyaml's loader when present: the pure-Python one is slower
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raws = [
        yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # a safe loader
        for path in sorted((folder or catalogue_dir()).glob("DL*.yaml"))
    ]
    return {raw["id"]: raw for raw in raws}


def write_catalogue_json(path: Path = CATALOGUE_JSON) -> None:
    """Generate the pre-parsed catalogue from the YAML files."""
    text = json.dumps(read_yaml_catalogue(), indent=1, ensure_ascii=False, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


def _rule_doc(raw: dict[str, Any]) -> RuleDoc:
    sections = {key: raw.get(key, "") for key, _ in DOC_SECTIONS}
    options = tuple(
        RuleOption(
            name=o["name"],
            type=o["type"],
            default=o["default"],
            description=o.get("description", ""),
        )
        for o in raw.get("options", []) or []
    )
    return RuleDoc(
        id=raw["id"],
        name=raw["name"],
        severity=raw["severity"],
        default=bool(raw.get("default", True)),
        summary=raw["summary"],
        sections=sections,
        options=options,
        references=tuple(raw.get("references", []) or []),
        flag=tuple(_example(e) for e in raw.get("flag", []) or []),
        clean=tuple(_example(e) for e in raw.get("clean", []) or []),
        enabled_by=raw.get("enabled_by"),
        scope=_one_of(raw["id"], "scope", raw["scope"], SCOPES),
        pattern=_one_of(raw["id"], "pattern", raw["pattern"], PATTERNS),
        source=_one_of(raw["id"], "source", raw["source"], SOURCE_MODES),
        needs=tuple(_one_of(raw["id"], "needs", n, NEEDS) for n in raw["needs"]),
        fix=_one_of(raw["id"], "fix", raw["fix"], FIXES),
    )


@functools.lru_cache(maxsize=32)
def rules_where(**wanted: Any) -> tuple[str, ...]:
    """The ids of the rules whose metadata has every ``wanted`` value (a tuple: any of them);
    computed once per question (the folding of findings asks it for every output finding).

    >>> rules_where(source="single")
    ('DL001', 'DL002', 'DL005')
    >>> rules_where(scope=("layer", "stack"), pattern="coverage")
    ('DL001', 'DL002', 'DL003')
    """

    def matches(doc: RuleDoc, key: str, value: Any) -> bool:
        return getattr(doc, key) in (value if isinstance(value, tuple) else (value,))

    return tuple(
        doc.id
        for doc in load_catalogue().values()
        if all(matches(doc, key, value) for key, value in wanted.items())
    )


@functools.lru_cache(maxsize=1)
def load_catalogue() -> dict[str, RuleDoc]:
    """All rules by id, sorted by id."""
    raws = json.loads(CATALOGUE_JSON.read_text(encoding="utf-8"))
    docs = [_rule_doc(raws[rule]) for rule in sorted(raws)]
    return {d.id: d for d in docs}


if __name__ == "__main__":  # python -m deconvlint.rules.catalogue: regenerate catalogue.json
    write_catalogue_json()
    print(f"wrote {CATALOGUE_JSON}", file=sys.stderr)
