"""Bounded analysis (issue 14): the small files that used to take deconvlint down finish with
findings, in little memory and little output, with an honest ``truncated`` where the period cap
stopped the composition; under the cap nothing changes.

The models are the rows of ``benchmarks/bounded.py`` (which times them); here the CLI runs them
under an address-space cap, and the tests assert what comes out, never how long it took.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import resource
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from deconvlint.config.settings import Settings
from deconvlint.core import analysis, geometry
from deconvlint.core.analysis import (
    CELL_CAP,
    MAX_STATES,
    PERIOD_CAP,
    CoveragePass,
    CoverageResult,
    periodic_compensation,
)
from deconvlint.core.chainspec import parse_chain, parse_layer
from deconvlint.core.ir import Graph
from deconvlint.formatters import html
from deconvlint.formatters.plot import MAX_CELLS, finding_grid
from deconvlint.report import Finding
from deconvlint.rules.registry import run_rules
from tests.support.cli import REPO, run_cli

MEMORY_CAP = 1536 * 2**20  # address space, not RSS: numpy and onnx map more than they touch
#: No finding may print more than this (text, JSON or HTML), whatever its period.
FINDING_BYTES = 64_000


def _benchmark():
    spec = importlib.util.spec_from_file_location("bounded", REPO / "benchmarks" / "bounded.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _benchmark()


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, preexec_fn=_capped)


def _save(model: onnx.ModelProto, folder: Path, name: str) -> str:
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    return str(path)


def _all_patterns_short(metrics: dict) -> bool:
    return all(len(row) <= geometry.MAX_SHOWN for row in metrics.get("pattern") or [])


# ------------------------------------------------------------------------------------------------
# The table, through the CLI


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every JSON row of the issue's table in one CLI run: name -> its result."""
    folder = tmp_path_factory.mktemp("bounded")
    rows = {
        "ct2d_x16": bench.conv_transpose_chain(16),
        "ct2d_x40": bench.conv_transpose_chain(40),
        "ct1d_s65536_x2": bench.conv_transpose_chain(2, rank=1, k=3, s=65536, p=0),
        "ladder_12": bench.ladder(12),
        "subpixel_relu_1000": bench.sub_pixel_then_relus(1000),
        "ct1d_k1024_s1_x110": bench.stride1_chain(110),
    }
    paths = {name: _save(model, folder, name) for name, model in rows.items()}
    proc = run_capped("--format", "json", *paths.values(), cwd=folder)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "", proc.stderr  # no error line, no numpy warning
    results = {r["path"]: r for r in json.loads(proc.stdout)["results"]}
    table = {name: results[path] for name, path in paths.items()}
    table["_bytes"] = {"all": len(proc.stdout)}
    return table


def test_every_row_finishes_without_an_error(table: dict) -> None:
    for name, result in table.items():
        if not name.startswith("_"):
            assert result["error"] is None, (name, result["error"])


def test_output_is_proportional_to_findings(table: dict) -> None:
    findings = [f for n, r in table.items() if not n.startswith("_") for f in r["findings"]]
    for finding in findings:
        assert _all_patterns_short(finding["metrics"]), finding["rule"]
        assert len(json.dumps(finding)) < FINDING_BYTES, (finding["rule"], finding["node"])
    # old main: 6 MB of JSON for 16 layers, 104 MB for 20
    assert table["_bytes"]["all"] < (len(findings) + 1) * FINDING_BYTES
    # ... and the findings are few: the ladder's 12 levels have 2**12 paths and 48 upsamplers
    assert len(table["ladder_12"]["findings"]) <= 10 * 72


def _stack(result: dict) -> dict:
    (dl003,) = [f for f in result["findings"] if f["rule"] == "DL003"]
    return dl003


def test_sixteen_layers_still_fire_every_rule(table: dict) -> None:
    rules = [f["rule"] for f in table["ct2d_x16"]["findings"]]
    assert rules.count("DL001") == 16 and "DL003" in rules


def test_forty_layers_are_one_truncated_stack(table: dict) -> None:
    stack = _stack(table["ct2d_x40"])
    metrics = stack["metrics"]
    assert metrics["nodes"] == [f"up{i}" for i in range(40)]
    # 2-D k3 s2: the period doubles per layer; 1024 x 1024 = 2**20 cells is the last that fits
    assert metrics["truncated"] is True
    assert metrics["composed"] == [f"up{i}" for i in range(10)]
    assert metrics["period"] == [1024, 1024]
    assert "'up10'" in metrics["truncated_reason"] and "cap" in metrics["truncated_reason"]
    assert "10 of 40 uneven layers composed" in stack["message"]
    # exact for the composed part: the metrics of the first ten layers' own chain
    ten = geometry.pattern_metrics(
        geometry.chain_patterns(parse_chain(" -> ".join(["ConvTranspose2d(k=3, s=2, p=1)"] * 10)))
    )
    for key in ("max_coverage", "min_coverage", "ratio", "cv", "pattern", "period"):
        assert metrics[key] == ten[key], key
    assert metrics["pattern_summary"] == [{"length": 1024, "min": 1, "max": 144}] * 2


def test_two_layers_of_stride_65536(table: dict) -> None:
    result = table["ct1d_s65536_x2"]
    rules = sorted(f["rule"] for f in result["findings"])
    assert rules == ["DL002", "DL002", "DL003"]
    dl002 = [f["metrics"] for f in result["findings"] if f["rule"] == "DL002"]
    assert all(m["pattern_summary"] == [{"length": 65536, "min": 0, "max": 1}] for m in dl002)
    stack = _stack(result)
    # even the first layer's period (65536) is past the cap: nothing composed, and it says so
    assert stack["metrics"]["truncated"] is True and stack["metrics"]["composed"] == []
    assert stack["metrics"]["max_coverage"] is None and stack["metrics"]["ratio"] is None
    assert "0 of 2 uneven layers composed" in stack["message"]


def test_ladder_of_joins_keeps_a_bounded_number_of_states(table: dict) -> None:
    findings = table["ladder_12"]["findings"]
    assert any(f["rule"] == "DL003" for f in findings)
    # on the findings, or on the output they explain (a folded DL004: metrics["outputs"])
    carried = [f["metrics"] for f in findings]
    carried += [o for f in findings for o in f["metrics"].get("outputs", [])]
    reasons = " ".join(m.get("truncated_reason", "") for m in carried)
    assert "merged into one" in reasons


def test_sub_pixel_then_a_thousand_relus(table: dict) -> None:
    assert [f["rule"] for f in table["subpixel_relu_1000"]["findings"]] == ["DL008"]


def test_a_hundred_and_ten_stride_one_layers_stay_finite(table: dict) -> None:
    assert table["ct1d_k1024_s1_x110"]["findings"] == []


@pytest.mark.parametrize("stride", [4096, 65536])
def test_html_heatmap_of_a_huge_period_is_clipped(tmp_path: Path, stride: int) -> None:
    path = _save(bench.conv_transpose_chain(1, k=3, s=stride, p=0), tmp_path, f"s{stride}")
    proc = run_capped("--format", "html", path, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    assert "<svg" in proc.stdout and "the first cells of a longer period" in proc.stdout
    assert len(proc.stdout) < 20 * FINDING_BYTES  # 1.2 GB / MemoryError before


# ------------------------------------------------------------------------------------------------
# The pieces, in process


def test_cap_is_exact_below_and_truncated_beyond():
    # 1-D k3 s2: period 2**n; 12 layers reach the cap of 4096 exactly, 13 go past it
    for layers, truncated in ((12, False), (13, True)):
        spec = " -> ".join(["ConvTranspose1d(k=3, s=2, p=1, op=1)"] * layers)
        nodes = parse_chain(spec)
        graph = Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],))
        (stack,) = CoveragePass(graph).run().stacks
        assert (stack.truncated is not None) == truncated
        expected = geometry.chain_patterns(nodes[: 12 if truncated else layers])
        assert np.array_equal(stack.patterns[0], expected[0])
        assert len(stack.patterns[0]) <= PERIOD_CAP


def test_cells_cap_in_3d():
    # 3-D: 2**7 per axis is 2**21 cells, past CELL_CAP; 6 layers (2**18 cells) compose
    spec = " -> ".join(["ConvTranspose3d(k=3, s=2, p=1, op=1)"] * 8)
    nodes = parse_chain(spec)
    (stack,) = CoveragePass(Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],))).run().stacks
    assert stack.composed == 6 and math.prod(len(c) for c in stack.patterns) <= CELL_CAP


def test_truncated_layers_are_not_called_compensated():
    # a blur after the cap cannot be shown to make the pattern uniform: DL001 stays a warning
    spec = " -> ".join(["ConvTranspose1d(k=3, s=2, p=1, op=1)"] * 13) + " -> Blur1d(taps=(1, 1))"
    nodes = parse_chain(spec)
    findings = run_rules(Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],)), Settings())
    assert {f.severity for f in findings if f.rule == "DL001"} == {"warning"}


def _ladder_graph(levels: int) -> Graph:
    nodes, value = [], "x"
    for i in range(levels):
        a = parse_layer("ConvTranspose2d(k=3, s=2, p=1, op=1)")
        b = parse_layer("ConvTranspose2d(k=4, s=3, p=1)")
        c = parse_layer("ConvTranspose2d(k=4, s=3, p=1)")
        d = parse_layer("ConvTranspose2d(k=3, s=2, p=1, op=1)")
        join = parse_layer("ReLU()")
        for node, name, inputs in (
            (a, f"a{i}", (value,)),
            (b, f"b{i}", (f"a{i}",)),
            (c, f"c{i}", (value,)),
            (d, f"d{i}", (f"c{i}",)),
            (join, f"j{i}", (f"b{i}", f"d{i}")),
        ):
            node.name, node.inputs, node.outputs = name, inputs, (name,)
            nodes.append(node)
        value = f"j{i}"
    return Graph("ladder", nodes, ("x",), (value,))


def test_ladder_states_are_capped_and_merged_conservatively():
    result = CoveragePass(_ladder_graph(10)).run()
    assert max(len(states) for states in result.states.values()) <= MAX_STATES
    assert result.merged  # 2**7 paths meet at the seventh join
    # every uneven layer on any path, merged or not, stays pending at the output
    assert {f"a{i}" for i in range(10)} <= result.uncompensated


def test_compensation_search_on_a_chain_of_100000_nodes():
    relu = parse_layer("ReLU()")
    nodes = [
        dataclasses.replace(relu, name=f"r{i}", inputs=(f"v{i}",), outputs=(f"v{i + 1}",))
        for i in range(100_000)
    ]
    blur = dataclasses.replace(
        parse_layer("Blur2d(taps=(1, 1))"), name="blur", inputs=("v100000",), outputs=("out",)
    )
    graph = Graph("g", [*nodes, blur], ("v0",), ("out",))
    assert periodic_compensation(graph, "v0", (2, 2)) == ["blur"]
    graph = Graph("g", nodes, ("v0",), ("v100000",))
    assert periodic_compensation(graph, "v0", (2, 2)) is None


def test_metrics_beyond_a_float_are_null_with_a_note():
    huge = [np.array([1.0, 2.0])] * 2
    metrics = geometry.pattern_metrics(huge, exp=5000)
    assert metrics["max_coverage"] is None and metrics["min_coverage"] is None
    assert metrics["ratio"] == 4.0 and metrics["cv"] == 0.4843 and metrics["note"]
    assert geometry.pattern_metrics([np.array([1.0, np.inf])])["max_coverage"] is None


def test_a_long_stride_one_chain_keeps_exact_ratios_and_no_warning(recwarn):
    spec = " -> ".join(["ConvTranspose1d(k=1024, s=1)"] * 110)
    spec += " -> ConvTranspose1d(k=3, s=2, p=1, op=1) -> ConvTranspose1d(k=3, s=2, p=1, op=1)"
    nodes = parse_chain(spec)
    with np.errstate(all="raise"):  # any overflow in the pass would raise here
        findings = run_rules(Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],)), Settings())
    (stack,) = [f for f in findings if f.rule == "DL003"]
    assert stack.metrics["max_coverage"] is None and "note" in stack.metrics
    assert stack.metrics["ratio"] == 3.0 and stack.metrics["pattern_scale"].startswith("2^")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_heatmap_cost_does_not_depend_on_the_period():
    page = html.heatmap([[1, 2, 3] * 200_000] * 2, period=[600_000, 600_000])
    assert page.count("<rect") == html.HEATMAP_MAX_CELLS**2
    assert "one period outlined" not in page
    small = html.heatmap([[1, 2], [1, 2]], period=[2, 2])
    assert "one period outlined" in small


def test_plot_grid_is_clipped_before_it_is_built():
    finding = Finding(
        "DL001", "uneven-overlap", "warning", "up", "ConvTranspose", "m",
        metrics={"pattern": [[1.0, 2.0] * 100_000] * 3},
    )  # fmt: skip
    grid, _ = finding_grid(finding)
    assert grid.shape == (MAX_CELLS, MAX_CELLS)


def test_long_patterns_are_summarised_in_every_output():
    pattern = np.arange(1.0, 5001.0)
    metrics = geometry.pattern_metrics([pattern])
    assert len(metrics["pattern"][0]) == geometry.MAX_SHOWN
    assert metrics["pattern_summary"] == [{"length": 5000, "min": 1, "max": 5000}]
    short = geometry.pattern_metrics([np.array([1.0, 2.0])])
    assert "pattern_summary" not in short


def test_fractional_nearest_resize_past_the_cap_fires_without_its_pattern():
    nodes = parse_chain("Upsample(scale=65537/65536, mode=nearest, rank=2)")
    (finding,) = run_rules(Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],)), Settings())
    assert finding.rule == "DL005" and finding.metrics["truncated"] is True
    assert (finding.metrics["min_coverage"], finding.metrics["max_coverage"]) == (1, 4)
    # under the cap the exact pattern is unchanged: floor/ceil agree with its extremes
    nodes = parse_chain("Upsample(scale=7/4, mode=nearest, rank=2)")
    (finding,) = run_rules(Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],)), Settings())
    assert "truncated" not in finding.metrics
    assert (finding.metrics["min_coverage"], finding.metrics["max_coverage"]) == (1, 4)


def test_text_marks_a_pattern_listed_in_part():
    from deconvlint.formatters.text import finding_details

    metrics = geometry.pattern_metrics([np.arange(1.0, 101.0), np.array([1.0, 2.0])])
    finding = Finding("DL004", "output-coverage-variance", "warning", "n", "Relu", "m", metrics)
    (line,) = [x for x in finding_details(finding) if x.strip().startswith("pattern:")]
    assert line.endswith("32, ...] x W [1, 2], period 100x2")


def _work(graph: Graph, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """What the coverage pass and DL003's ranking do on ``graph``: stacks met, the distinct
    patterns they carry, and per-axis CVs computed (the pass keeps the worst of the stacks
    paths share by CV; DL003 keeps the worst of those ending on one layer)."""
    from deconvlint.rules.base import Context
    from deconvlint.rules.catalogue import load_catalogue
    from deconvlint.rules.dl003_stacked_uneven_overlap import maximal_stacks

    counts = {"stacks": 0, "cvs": 0}
    patterns: set[bytes] = set()
    add_stack, cv = CoverageResult.add_stack, geometry.coefficient_of_variation

    def counting_add(self, stack):
        counts["stacks"] += 1
        patterns.add(b"|".join(c.tobytes() for c in stack.patterns))
        return add_stack(self, stack)

    def counting_cv(c):
        counts["cvs"] += 1
        return cv(c)

    monkeypatch.setattr(CoverageResult, "add_stack", counting_add)
    monkeypatch.setattr(geometry, "coefficient_of_variation", counting_cv)
    if hasattr(geometry, "_cv_of"):
        geometry._cv_of.cache_clear()  # count every CV this graph needs, none from before
    maximal_stacks(Context(graph, Settings(), load_catalogue()["DL003"]))
    monkeypatch.undo()
    return counts | {"patterns": len(patterns)}


def test_stack_ranking_computes_each_cv_once_and_work_is_linear_in_depth(monkeypatch):
    # A ladder of joins: 2**level paths share each level's uneven layers (capped at
    # MAX_STATES), so the same stacks arrive again and again.  Ranking them costs one CV per
    # distinct pattern and axis (2-D here), not one per comparison (which grew with the paths:
    # 2,772 CVs for 2,810 stacks at 16 levels), and once the paths are capped each level adds
    # the same number of stacks: no work grows faster than the depth.
    work = {levels: _work(_ladder_graph(levels), monkeypatch) for levels in (8, 16, 32)}
    for counts in work.values():
        assert counts["cvs"] <= 2 * counts["patterns"], work
    first = (work[16]["stacks"] - work[8]["stacks"]) / 8
    second = (work[32]["stacks"] - work[16]["stacks"]) / 16
    assert 0 < second <= first, work


def _twins_graph(levels: int) -> Graph:
    """Each level: two alike uneven upsamplers side by side, joined, then a strided conv. The
    paths double at each join (capped at MAX_STATES) and stay apart (their layers differ),
    but they all carry the same pattern."""
    nodes, value = [], "x"
    for i in range(levels):
        for spec, name, inputs in (
            ("ConvTranspose1d(k=3, s=2, p=1, op=1)", f"a{i}", (value,)),
            ("ConvTranspose1d(k=3, s=2, p=1, op=1)", f"b{i}", (value,)),
            ("ReLU()", f"j{i}", (f"a{i}", f"b{i}")),
            ("Conv1d(k=3, s=2, p=1)", f"d{i}", (f"j{i}",)),
        ):
            node = parse_layer(spec)
            node.name, node.inputs, node.outputs = name, inputs, (name,)
            nodes.append(node)
        value = f"d{i}"
    return Graph("twins", nodes, ("x",), (value,))


@pytest.mark.parametrize("levels", [6, 24])
def test_each_node_composes_each_pattern_once(levels, monkeypatch):
    # 64 paths reach every node past the sixth level with one pattern between them: composing
    # it once per path (old: 3,656 compositions at 24 levels) is work that grows with the
    # paths; once per node and pattern it is 3 per level (the join has no spatial axis)
    calls: list[tuple] = []
    propagate_all = analysis.propagate_all

    def counting(patterns, node):
        calls.append((node.name, b"|".join(c.tobytes() for c in patterns)))
        return propagate_all(patterns, node)

    monkeypatch.setattr(analysis, "propagate_all", counting)
    result = CoveragePass(_twins_graph(levels)).run()
    assert max(len(states) for states in result.states.values()) == MAX_STATES
    assert len(calls) == len(set(calls)) == 3 * levels
