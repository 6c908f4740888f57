"""The coverage pass over graphs: joins, barriers, compensation and stacks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvlint.config.settings import Settings
from deconvlint.core.analysis import CoveragePass, _shape_key, _shortest, is_compensated
from deconvlint.core.chainspec import parse_chain, parse_layer
from deconvlint.core.geometry import chain_patterns
from deconvlint.core.ir import Graph, Kind, Node
from deconvlint.rules.registry import run_rules


def chain_graph(text: str) -> Graph:
    nodes = parse_chain(text)
    return Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],))


def layer(spec: str, name: str, inputs: tuple[str, ...], output: str) -> Node:
    node = parse_layer(spec)
    node.name, node.inputs, node.outputs = name, inputs, (output,)
    return node


def rules(graph: Graph, **kw):
    return run_rules(graph, Settings(select=("ALL",), **kw))


def test_issue_cases():
    cases = {
        "ConvTranspose1d(k=3, s=2, p=1, op=1) -> ConvTranspose1d(k=4, s=2, p=1)": [3, 3, 3, 3],
        "ConvTranspose1d(k=4, s=2, p=1) -> ConvTranspose1d(k=3, s=2, p=1, op=1)": [2, 4, 2, 4],
        "ConvTranspose1d(k=3, s=2, p=1, op=1) -> ConvTranspose1d(k=3, s=2, p=1, op=1)": [
            1,
            3,
            2,
            3,
        ],
        "ConvTranspose1d(k=2, s=2, d=2)": [2, 0],
    }
    for chain, want in cases.items():
        assert chain_patterns(parse_chain(chain))[0].tolist() == want, chain
    for rank, ratio in ((1, 2.0), (2, 4.0), (3, 8.0)):
        graph = chain_graph(f"ConvTranspose{rank}d(k=3, s=2, p=1, op=1)")
        (dl001,) = [f for f in rules(graph) if f.rule == "DL001"]
        assert dl001.metrics["ratio"] == ratio
        assert dl001.metrics["pattern"] == [[1, 2]] * rank


def test_json_metrics_match_the_contract_example():
    graph = chain_graph("ConvTranspose2d(k=3, s=2, p=1, op=1)")
    (dl001,) = [f for f in rules(graph) if f.rule == "DL001"]
    layer_metrics = {
        "pattern": [[1, 2], [1, 2]],
        "period": [2, 2],
        "max_coverage": 4,
        "min_coverage": 1,
        "ratio": 4.0,
        "cv": 0.4843,
    }
    # with the graph output this layer makes uneven (a DL004 it explains, folded into it)
    output = {"output": "v1", "node": "layer0", **layer_metrics}
    assert dl001.metrics == {**layer_metrics, "outputs": [output]}


def test_stylegan_blur_after_k3_is_uniform_and_lowers_dl001():
    graph = chain_graph(
        "ConvTranspose2d(k=3, s=2, p=1, op=1) -> ReLU() -> Blur2d(taps=(1, 3, 3, 1))"
    )
    found = {f.rule: f for f in rules(graph)}
    assert "DL004" not in found
    assert found["DL001"].severity == "info"
    assert "'layer2'" in found["DL001"].message


def test_joins_keep_paths_apart():
    # x -> up(k3) -> a ; x -> up2(k4) -> b ; Add(a, b): the k3 path is non-uniform at the output
    nodes = [
        layer("ConvTranspose2d(k=3, s=2, p=1, op=1)", "up3", ("x",), "a"),
        layer("ConvTranspose2d(k=4, s=2, p=1)", "up4", ("x",), "b"),
        Node("add", "Add", Kind.JOIN, ("a", "b"), ("y",)),
    ]
    graph = Graph("g", nodes, ("x",), ("y",))
    result = CoveragePass(graph).run()
    patterns = sorted(s.patterns[0].tolist() for s in result.states["y"])
    assert patterns == [[1.0, 2.0], [2.0]]  # k4's constant [2, 2] is carried as one period [2]
    # by default the k3 layer's DL001 explains the output and carries its metrics ...
    assert [f.rule for f in rules(graph)] == ["DL001"]
    (dl001,) = rules(graph)
    assert [(o["output"], o["node"]) for o in dl001.metrics["outputs"]] == [("y", "add")]
    # ... and DL004 on its own still names the output and the layer behind it
    (dl004,) = run_rules(graph, Settings(select=("DL004",)))
    assert dl004.node == "add" and dl004.metrics["output"] == "y"
    assert dl004.metrics["nodes"] == ["up3"]


def test_a_layer_is_compensated_only_if_every_path_is():
    # up3 feeds both a cancelling k4 layer and the output directly
    nodes = [
        layer("ConvTranspose1d(k=3, s=2, p=1, op=1)", "up3", ("x",), "a"),
        layer("ConvTranspose1d(k=4, s=2, p=1)", "up4", ("a",), "b"),
    ]
    one_path = Graph("g", nodes, ("x",), ("b",))
    assert is_compensated(CoveragePass(one_path).run(), "up3") == ["up4"]
    two_paths = Graph("g", nodes, ("x",), ("a", "b"))
    assert is_compensated(CoveragePass(two_paths).run(), "up3") is None
    assert [f.severity for f in rules(two_paths) if f.rule == "DL001"] == ["warning"]


def test_barrier_restarts_paths_and_keeps_the_warning():
    nodes = [
        layer("ConvTranspose1d(k=3, s=2, p=1, op=1)", "up3", ("x",), "a"),
        Node("reshape", "Reshape", Kind.BARRIER, ("a",), ("b",)),
        layer("ConvTranspose1d(k=4, s=2, p=1)", "up4", ("b",), "c"),
    ]
    graph = Graph("g", nodes, ("x",), ("c",))
    result = CoveragePass(graph).run()
    assert [s.patterns[0].tolist() for s in result.states["c"]] == [[2.0]]  # constant: [2, 2]
    assert is_compensated(result, "up3") is None
    assert {f.rule for f in rules(graph)} == {"DL001"}


def test_stack_reported_once_on_its_last_layer_with_composed_pattern():
    graph = chain_graph(
        "ConvTranspose2d(k=3, s=2, p=1, op=1) -> ReLU() -> ConvTranspose2d(k=3, s=2, p=1, op=1)"
        " -> ReLU() -> ConvTranspose2d(k=3, s=2, p=1, op=1)"
    )
    (dl003,) = [f for f in rules(graph) if f.rule == "DL003"]
    assert dl003.node == "layer4"
    assert dl003.metrics["nodes"] == ["layer0", "layer2", "layer4"]
    assert dl003.metrics["pattern"] == [[1, 4, 3, 5, 2, 5, 3, 4]] * 2
    assert dl003.metrics["ratio"] == 25.0 and dl003.metrics["effect"] == "compounds"


def test_stack_that_partly_cancels():
    # k3 then k3 then a conv of size 2 -> [4, 5, 5, 4] at the output; stack itself compounds.
    graph = chain_graph(
        "ConvTranspose1d(k=5, s=2, p=2, op=1) -> ConvTranspose1d(k=5, s=2, p=2, op=1)"
    )
    (dl003,) = [f for f in rules(graph) if f.rule == "DL003"]
    assert dl003.metrics["effect"] in ("compounds", "partly cancels")
    worst = max(3 / 2, 3 / 2)
    assert (dl003.metrics["ratio"] > worst) == (dl003.metrics["effect"] == "compounds")


def test_unknown_scale_restarts_the_path():
    node = parse_layer("Upsample(scale=2, mode=nearest, rank=1)", 1)
    node.resize = type(node.resize)(mode="nearest", scales=(None,))
    nodes = [parse_layer("ConvTranspose1d(k=3, s=2, p=1, op=1)", 0), node]
    graph = Graph("g", nodes, ("v0",), ("v2",))
    result = CoveragePass(graph).run()
    assert "layer1" in result.unknown
    assert {f.rule for f in rules(graph)} == {"DL001"}


def test_residual_network_states_stay_few():
    # 30 residual blocks: Add(x, conv(x)) — 2**30 paths, one state.
    nodes, prev = [], "x"
    for i in range(30):
        nodes.append(layer("Conv2d(k=3, p=1)", f"conv{i}", (prev,), f"c{i}"))
        nodes.append(Node(f"add{i}", "Add", Kind.JOIN, (prev, f"c{i}"), (f"r{i}",)))
        prev = f"r{i}"
    nodes.append(layer("ConvTranspose2d(k=3, s=2, p=1, op=1)", "up", (prev,), "y"))
    graph = Graph("g", nodes, ("x",), ("y",))
    result = CoveragePass(graph).run()
    assert len(result.states["y"]) == 1
    assert np.array_equal(result.states["y"][0].patterns[0], [1.0, 2.0])


def test_cost_does_not_depend_on_declared_size():
    # The pass never sees sizes: two graphs that differ only in their shapes annotate alike.
    small = chain_graph("ConvTranspose3d(k=3, s=2, p=1, op=1)")
    big = chain_graph("ConvTranspose3d(k=3, s=2, p=1, op=1)")
    small.shapes = {"v0": (1, 4, 16, 16, 16)}
    big.shapes = {"v0": (1, 4, 512, 512, 512)}
    assert [f.to_dict() for f in rules(small)] == [f.to_dict() for f in rules(big)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=6))
def test_a_path_state_key_is_the_rounded_scaled_pattern(values):
    # the short cuts for one-element and constant patterns give the general formula's key,
    # and a constant pattern shortened to one element still merges with its longer form
    c = np.array(values)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        general = np.round(c / np.abs(c).max(), 9).tobytes() if c.any() else b""
        assert _shape_key(c) == general
        if len(c) > 1 and c.min() == c.max():
            assert _shape_key(_shortest(c)) == _shape_key(c[:1])
            assert len(_shortest(c)) == 1 and _shortest(c)[0] == c[0]
        else:
            assert _shortest(c) is c


def test_constant_patterns_are_shortened_and_the_findings_stay():
    # k=16 s=8 (HiFi-GAN's upsampler) is even: a constant period-8 pattern, carried as length 1
    graph = chain_graph(
        "ConvTranspose1d(k=16, s=8, p=4) -> Conv1d(k=7, p=3) -> ConvTranspose1d(k=3, s=2, p=1, op=1)"
    )
    states = CoveragePass(graph).run().states
    assert [len(c) for s in states["v1"] for c in s.patterns] == [1]
    assert [c.tolist() for s in states["v3"] for c in s.patterns] == [[14.0, 28.0]]
    assert [f.rule for f in rules(graph)] == ["DL001"]
    assert [f.rule for f in run_rules(graph, Settings(select=("DL004",)))] == ["DL004"]
