"""``per-node-ignores`` globs: the same answers as ``fnmatch.fnmatchcase``, each glob compiled
once, however many nodes and globs there are."""

from __future__ import annotations

import fnmatch
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvlint.config.settings import Settings

# Characters with a meaning in globs, and a few plain ones, so that names and globs collide.
_GLOB_ALPHABET = st.sampled_from([*"ab.*?[]!-^\\\n/", "ab", "a.", "[!a]", "[a-b]"])
_NAME_ALPHABET = st.sampled_from(list("ab.*?[]!-^\\\n/c"))
globs = st.lists(_GLOB_ALPHABET, max_size=7).map("".join)
names = st.lists(_NAME_ALPHABET, max_size=8).map("".join)
selectors = st.lists(st.sampled_from(["DL001", "DL00", "DL003", "DL", "ALL", "DL1"]), min_size=1)


def _naive(per_node: dict[str, tuple[str, ...]], rule: str, node: str) -> bool:
    return any(
        fnmatch.fnmatchcase(node, glob) and any(s == "ALL" or rule.startswith(s) for s in selected)
        for glob, selected in per_node.items()
    )


@settings(max_examples=1500, deadline=None)
@given(
    per_node=st.dictionaries(globs, selectors.map(tuple), max_size=8),
    queries=st.lists(st.tuples(st.sampled_from(["DL001", "DL003", "DL010"]), names), max_size=8),
)
def test_per_node_ignores_answer_as_fnmatch_does(
    per_node: dict[str, tuple[str, ...]], queries: list[tuple[str, str]]
) -> None:
    chosen = Settings(per_node_ignores=per_node)
    for rule, node in queries:
        assert chosen.is_ignored_for_node(rule, node) == _naive(per_node, rule, node), (rule, node)


@settings(max_examples=500, deadline=None)
@given(globs=st.lists(globs, max_size=6), name=names)
def test_a_name_is_matched_by_a_glob_that_names_it(globs: list[str], name: str) -> None:
    """Globs built from the name itself (its beginning, its end, both), so that matches are
    common rather than rare."""
    built = [*globs, name, name[:2] + "*", "*" + name[-2:], name[:1] + "?" * (len(name) - 1)]
    chosen = Settings(per_node_ignores={glob: ("DL001",) for glob in built})
    expected = _naive(chosen.per_node_ignores, "DL001", name)
    assert expected  # the name itself is one of the globs
    assert chosen.is_ignored_for_node("DL001", name)


def test_each_glob_is_compiled_once_however_many_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """50,000 globs took 18 s on a 9 KB model: fnmatch's cache holds 32,768 compiled globs, so
    each node compiled all of them again.  Now a glob is compiled at most once per rule, and
    only when a name could match it."""
    translated: Counter[str] = Counter()
    translate = fnmatch.translate

    def counting(glob: str) -> str:
        translated[glob] += 1
        # once per rule at most (a glob naming DL00 serves the three rules asked about)
        assert translated[glob] <= 3, f"{glob!r} compiled {translated[glob]} times"
        return translate(glob)

    monkeypatch.setattr(fnmatch, "translate", counting)
    per_node = {f"decoder.layer{i}.*": ("DL001",) for i in range(40_000)}
    per_node.update({f"*.branch{i}": ("DL003",) for i in range(100)})
    per_node["encoder.*"] = ("DL00",)
    chosen = Settings(per_node_ignores=per_node)
    expected = {f"decoder.layer{i}.up": {"DL001"} for i in range(0, 40_000, 400)}
    expected.update({"encoder.conv": {"DL001", "DL003", "DL004"}, "x.branch7": {"DL003"}})
    expected["decoder.other"] = set()
    for _ in range(3):
        for node, ignored in expected.items():
            for rule in ("DL001", "DL003", "DL004"):
                assert chosen.is_ignored_for_node(rule, node) == (rule in ignored), (rule, node)
    # and only the globs whose literal beginning or end a node has
    assert sum(translated.values()) <= 3 * len(expected)
