"""Every suggested rewrite is built in torch: same output shape on several input sizes, and clean."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvlint.config.settings import Settings
from deconvlint.core import geometry as geo
from deconvlint.core.chainspec import parse_layer
from deconvlint.core.ir import Graph, Kind, Node, WindowAxis
from deconvlint.rewrites.suggestions import (
    conv_transpose_rewrites,
    excess,
    solve_conv_transpose,
    solve_resize_conv,
    solve_strided_conv,
    strided_rewrites,
)
from deconvlint.rules.registry import run_rules

torch = pytest.importorskip("torch")
nn = torch.nn

SIZES = (5, 8, 9, 10, 13, 16)


def build(code: str, **names):
    return eval(
        code, {"nn": nn, "F": torch.nn.functional, "in_channels": 3, "out_channels": 2, **names}
    )


def out_shape(module, n: int, rank: int, channels: int = 3):
    with torch.no_grad():
        return tuple(module(torch.zeros((1, channels) + (n,) * rank)).shape)


def node_from_torch(module, name: str = "m") -> list[Node]:
    """The IR of a torch layer (or an Upsample + Conv sequence), read from its attributes."""
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    nodes = []
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Upsample):
            rank = len(nodes and nodes[-1].window) or 2
            scale = layer.scale_factor
            scales = scale if isinstance(scale, tuple) else (scale,) * 2
            spec = ", ".join(str(int(s)) for s in scales)
            nodes.append(
                parse_layer(f"Upsample(scale=({spec}), mode=nearest, rank={len(scales)})", i)
            )
            del rank
            continue
        kind = Kind.CONV_TRANSPOSE if "Transpose" in type(layer).__name__ else Kind.CONV
        window = tuple(
            WindowAxis(kernel=k, stride=s, dilation=d, pads_begin=p, pads_end=p, output_padding=op)
            for k, s, d, p, op in zip(
                layer.kernel_size,
                layer.stride,
                layer.dilation,
                layer.padding,
                getattr(layer, "output_padding", (0,) * len(layer.kernel_size)),
                strict=True,
            )
        )
        nodes.append(
            Node(f"{name}{i}", type(layer).__name__, kind, (f"v{i}",), (f"v{i + 1}",), window)
        )
    return nodes


def assert_clean(nodes: list[Node]):
    graph = Graph("rewrite", nodes, ("v0",), (nodes[-1].outputs[0],))
    bad = [
        f for f in run_rules(graph, Settings()) if f.rule in ("DL001", "DL002", "DL003", "DL004")
    ]
    assert not bad, [f.message for f in bad]


conv_transpose_1d = st.builds(
    lambda k, s, d, p, op: (k, s, d, min(p, d * (k - 1)), op % max(s, d)),
    st.integers(1, 8),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(0, 8),
    st.integers(0, 4),
)


@settings(max_examples=300, deadline=None)
@given(conv_transpose_1d, st.sampled_from([1, 2]))
def test_conv_transpose_rewrites_keep_shape_and_are_clean(params, rank):
    k, s, d, p, op = params
    original = getattr(nn, f"ConvTranspose{rank}d")(
        3, 2, k, stride=s, padding=p, output_padding=op, dilation=d
    )
    node = node_from_torch(original)[0]
    node.in_channels, node.out_channels = 3, 2
    for suggestion in conv_transpose_rewrites(node):
        rewrite = build(suggestion.code)
        for n in SIZES:
            if (n - 1) * s - 2 * p + d * (k - 1) + op + 1 <= 0:
                continue
            assert out_shape(rewrite, n, rank) == out_shape(original, n, rank), (suggestion.code, n)
        assert_clean(node_from_torch(rewrite))


@settings(max_examples=2000, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(0, 12),
    st.integers(0, 12),
    st.integers(0, 5),
)
def test_size_algebra_for_asymmetric_pads(k, s, d, pb, pe, op):
    """ONNX allows pads_begin != pads_end: the solved layers keep L(n) for every n."""
    win = WindowAxis(kernel=k, stride=s, dilation=d, pads_begin=pb, pads_end=pe, output_padding=op)

    def conv_t_length(n, kernel, stride, dil, pb_, pe_, op_):
        return (n - 1) * stride + dil * (kernel - 1) + 1 - pb_ - pe_ + op_

    k2, p2, op2 = solve_conv_transpose(win)
    assert k2 % s == 0 and 0 <= op2 < s and p2 >= 0
    assert geo.is_uniform(geo.phase_pattern(k2, s, 1, p2))
    kc, pc = solve_resize_conv(win)
    assert kc >= 1 and pc >= 0
    for n in range(1, 12):
        want = conv_t_length(n, k, s, d, pb, pe, op)
        assert conv_t_length(n, k2, s, 1, p2, p2, op2) == want
        assert s * n + 2 * pc - kc + 1 == want
    assert excess(win) == d * (k - 1) - pb - pe + op


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(2, 4),
    st.integers(1, 2),
    st.integers(0, 4),
    st.sampled_from(["Conv", "MaxPool", "AvgPool"]),
)
def test_strided_rewrites_keep_shape_and_even_fan_out(k, s, d, p, base):
    p = min(p, (d * (k - 1) + 1) // 2)
    rank = 2
    if base == "Conv":
        original = nn.Conv2d(3, 2, k, stride=s, padding=p, dilation=d)
        spec = f"Conv2d(k={k}, s={s}, p={p}, d={d})"
    elif base == "MaxPool":
        p = min(p, k // 2)  # torch: pool padding at most half the kernel
        original = nn.MaxPool2d(k, stride=s, padding=p, dilation=d)
        spec = f"MaxPool2d(k={k}, s={s}, p={p}, d={d})"
    else:
        d = 1
        p = min(p, k // 2)
        original = nn.AvgPool2d(k, stride=s, padding=p)
        spec = f"AvgPool2d(k={k}, s={s}, p={p})"
    node = parse_layer(spec)
    node.in_channels, node.out_channels = 3, 2 if base == "Conv" else 3
    (suggestion,) = strided_rewrites(node)
    rewrite = build(suggestion.code)
    for n in SIZES:
        if n + 2 * p - d * (k - 1) - 1 < 0:
            continue
        channels_out = out_shape(original, n, rank)
        assert out_shape(rewrite, n, rank) == channels_out, (spec, suggestion.code, n)
    k2, pb, _pe = solve_strided_conv(node.window[0])
    assert geo.is_uniform(geo.phase_pattern(k2, s, 1, pb))


def test_issue_example_rewrite():
    node = parse_layer("ConvTranspose2d(k=3, s=2, p=1, op=1)")
    node.in_channels, node.out_channels, node.has_bias = 64, 32, True
    first, second = conv_transpose_rewrites(node)
    assert first.params == {"kernel_size": 4, "stride": 2, "padding": 1}
    assert first.code == "nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1)"
    assert second.params == {"scale_factor": 2, "mode": "nearest", "kernel_size": 3, "padding": 1}
    assert "nn.Conv2d(64, 32, kernel_size=3, padding=1)" in second.code


def test_rewrite_of_a_layer_without_bias_has_none():
    node = parse_layer("ConvTranspose2d(k=3, s=2, p=1, op=1)")
    node.in_channels, node.out_channels = 64, 32  # read from a model, with no bias
    first, second = conv_transpose_rewrites(node)
    assert (
        first.code == "nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1, bias=False)"
    )
    assert "nn.Conv2d(64, 32, kernel_size=3, padding=1, bias=False)" in second.code
    unread = parse_layer("ConvTranspose2d(k=3, s=2, p=1, op=1)")  # channels unknown: a spec
    assert "bias" not in conv_transpose_rewrites(unread)[0].code


def test_fractional_resize_rewrite_keeps_shape():
    from deconvlint.rewrites.suggestions import resize_rewrites

    node = parse_layer("Upsample(scale=3/2, mode=nearest)")
    (suggestion,) = resize_rewrites(node)
    original = nn.Upsample(scale_factor=1.5, mode="nearest")
    for n in SIZES:
        assert out_shape(build(suggestion.code), n, 2) == out_shape(original, n, 2)
