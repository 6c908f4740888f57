"""Every catalogue entry's ``flag:`` and ``clean:`` examples are its tests (as in fixit)."""

from __future__ import annotations

import pytest

from deconvlint.config.settings import Settings
from deconvlint.core.chainspec import parse_chain
from deconvlint.core.ir import Graph
from deconvlint.rules.catalogue import DOC_SECTIONS, load_catalogue
from deconvlint.rules.registry import RULES, run_rules

CATALOGUE = load_catalogue()


def findings_for(chain: str, rule_id: str, probe: bool = False):
    nodes = parse_chain(chain)
    graph = Graph("example", nodes, ("v0",), (nodes[-1].outputs[0],))
    if probe:  # the chain as a real ONNX model with all-ones weights, run by onnxruntime
        from deconvlint.frontends.onnx.reader import graph_from_model
        from deconvlint.probe.onnx import probe_onnx
        from tests.support.onnx_factory import model_from_chain

        model = model_from_chain(nodes, weights="ones")
        graph = graph_from_model(model)
        graph.measurements = probe_onnx(model, graph)
    # the rule on its own (an opt-in rule is selected by its exact id): its examples are its
    # semantics; how the rules share a cause is tested in test_one_finding_per_mistake
    return [f for f in run_rules(graph, Settings(select=(rule_id,))) if f.rule == rule_id]


def _cases(kind: str):
    for rule_id, doc in CATALOGUE.items():
        for example in getattr(doc, kind):
            yield pytest.param(rule_id, example, id=f"{rule_id}-{example.chain}")


def test_every_rule_has_a_catalogue_entry_with_examples():
    assert set(RULES) == set(CATALOGUE)
    for rule_id, doc in CATALOGUE.items():
        assert doc.flag, f"{rule_id} has no flag: examples"
        assert doc.clean, f"{rule_id} has no clean: examples"
        for key, heading in DOC_SECTIONS:
            assert doc.sections[key].strip(), f"{rule_id} lacks the section {heading!r}"
        assert doc.severity in ("info", "warning", "error")


@pytest.mark.parametrize(("rule_id", "example"), list(_cases("flag")))
def test_flag_examples_fire(rule_id, example):
    found = findings_for(example.chain, rule_id, example.probe)
    assert found, f"{rule_id} did not fire on {example.chain!r}"
    expected = example.severity or CATALOGUE[rule_id].severity
    assert [f.severity for f in found] == [expected] * len(found), [f.message for f in found]


@pytest.mark.parametrize(("rule_id", "example"), list(_cases("clean")))
def test_clean_examples_stay_silent(rule_id, example):
    found = findings_for(example.chain, rule_id, example.probe)
    assert not found, f"{rule_id} fired on clean {example.chain!r}: {[f.message for f in found]}"


def test_explain_has_ruff_headings():
    text = CATALOGUE["DL001"].explain()
    for _, heading in DOC_SECTIONS:
        assert f"## {heading}" in text
    assert "## References" in text


def test_per_node_ignores_and_select():
    nodes = parse_chain("ConvTranspose2d(k=3, s=2, p=1, op=1, name=decoder.up1)")
    graph = Graph("g", nodes, ("v0",), ("v1",))
    assert {f.rule for f in run_rules(graph, Settings())} == {"DL001"}  # DL004 folded into it
    # ignoring the layer's finding does not bring its consequence back as DL004
    quiet = Settings(per_node_ignores={"decoder.*": ("DL001",)})
    assert run_rules(graph, quiet) == []
    assert {f.rule for f in run_rules(graph, Settings(select=("DL004",)))} == {"DL004"}
    assert run_rules(graph, Settings(ignore=("DL00",))) == []
