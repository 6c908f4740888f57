"""README's rule table against the catalogue: every rule once, in id order, with the catalogue's
id, name, default severity, when it runs (``--list-rules``'s on / off / its switch) and summary.
The table is a view of the catalogue, not a second copy: a new rule fails here until its row is in.
"""

from __future__ import annotations

import re
from pathlib import Path

from deconvlint.rules.catalogue import load_catalogue

README = Path(__file__).resolve().parents[1] / "README.md"
HEADER = "| id | name | default severity | runs | what it finds |"


def rule_table(readme: str) -> list[list[str]]:
    """The rows of the table under ``## Rules``, as lists of cells."""
    section = readme.split("\n## Rules\n", 1)[1].split("\n## ", 1)[0]
    lines = section.split("\n")
    start = lines.index(HEADER)
    assert re.fullmatch(r"\|( --- \|)+", lines[start + 1]), lines[start + 1]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_the_readme_rule_table_is_the_catalogue() -> None:
    rows = rule_table(README.read_text(encoding="utf-8"))
    expected = [
        [doc.id, doc.name, doc.severity, doc.runs, doc.summary]
        for _, doc in sorted(load_catalogue().items())
    ]
    assert rows == expected, "README.md's rule table (## Rules) differs from the catalogue"


def test_the_table_reader_sees_a_missing_or_changed_row() -> None:
    readme = README.read_text(encoding="utf-8")
    rows = rule_table(readme)
    first = "| " + " | ".join(rows[0]) + " |"
    assert rule_table(readme.replace(first + "\n", "", 1)) == rows[1:]
    changed = readme.replace(first, first.replace(f"| {rows[0][2]} |", "| error |"), 1)
    assert rule_table(changed)[0][2] == "error" != rows[0][2]
