"""IR nodes from literal layer calls, with the torch front end's own geometry helpers.

A :class:`~deconvlint.source.calls.LayerCall` becomes the :class:`~deconvlint.core.ir.Node` the torch
front end would make of the same module, so that the rules, their numbers and their messages are
the same in source mode.  The node's name is the call's ``line:col``.

>>> from deconvlint.source.calls import find_calls
>>> (call,), _ = find_calls("nn.ConvTranspose2d(64, 32, kernel_size=3, stride=2, padding=1)")
>>> node = layer_node(call)
>>> node.name, node.op_type, node.window[0]
('1:1', 'ConvTranspose2d', WindowAxis(kernel=3, stride=2, dilation=1, pads_begin=1, pads_end=1, output_padding=0))
"""

from __future__ import annotations

from typing import Any

from deconvlint.core.ir import Kind, Node, WindowAxis
from deconvlint.core.sizes import same_pads
from deconvlint.frontends.torch.resize import interpolate_spec
from deconvlint.frontends.torch.spec import TensorArg, window_axes
from deconvlint.source import libraries
from deconvlint.source.calls import TORCH_NN, LayerCall

_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
# torch.nn classes that leave the coverage pattern as it is
POINTWISE = frozenset(
    {"ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish"}
    | {"Tanh", "Sigmoid", "Hardtanh", "Hardswish", "Softplus", "Identity", "GroupNorm"}
    | {"LayerNorm", "Dropout", "AlphaDropout", "LocalResponseNorm"}
    | {f"{base}{r}d" for base in ("BatchNorm", "InstanceNorm", "Dropout") for r in (1, 2, 3)}
    | {f"LazyBatchNorm{r}d" for r in (1, 2, 3)}
)


def class_rank(cls: str) -> int | None:
    """1, 2 or 3 from a class name's ``Nd`` suffix; ``None`` for rank-free names."""
    if cls.endswith("d") and cls[-2:-1] in ("1", "2", "3"):
        return int(cls[-2])
    return {"UpsamplingNearest2d": 2, "UpsamplingBilinear2d": 2, "PixelShuffle": 2}.get(cls)


def resize_rank(call: LayerCall) -> int | None:
    """The spatial rank a resize call states itself (a per-axis tuple, a rank-bound mode)."""
    rank = class_rank(call.cls)
    if rank is not None:
        return rank
    for name in ("scale_factor", "size"):
        value = call.args.get(name)
        if isinstance(value, tuple) and len(value) > 1:
            return len(value)
    return _MODE_RANK.get(call.args.get("mode", "nearest"))


def _ints(value: Any, low: int) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    return bool(values) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values
    )


def _window(call: LayerCall, rank: int, transposed: bool) -> tuple[WindowAxis, ...] | None:
    args = call.args
    kernel, stride = args.get("kernel_size"), args.get("stride", 1)
    padding, dilation = args.get("padding", 0), args.get("dilation", 1)
    output_padding = args.get("output_padding", 0)
    if not (_ints(kernel, 1) and _ints(stride, 1) and _ints(dilation, 1)):
        return None
    pads_end = None
    if not transposed and padding == "valid":
        padding = 0
    elif not transposed and padding == "same":
        kernels = kernel if isinstance(kernel, tuple) else (kernel,) * rank
        dilations = dilation if isinstance(dilation, tuple) else (dilation,) * rank
        padding, pads_end = same_pads(kernels, dilations)
    if not (_ints(padding, 0) and _ints(output_padding, 0)):
        return None
    return window_axes(
        kernel, stride, padding, dilation, output_padding, rank=rank, pads_end=pads_end
    )


def _resize_node(call: LayerCall, common: dict[str, Any], rank: int) -> Node | None:
    args = call.args
    mode = args.get("mode", "nearest")
    align_corners = args.get("align_corners")
    if call.cls == "UpsamplingBilinear2d":
        mode, align_corners = "bilinear", True
    size, scale = args.get("size"), args.get("scale_factor")
    if size is not None or scale is None:
        return None  # the scale of size= depends on the input size
    values = scale if isinstance(scale, tuple) else (scale,)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
        return None
    x = TensorArg("x", (None, None) + (None,) * rank)
    spec = interpolate_spec(
        x,
        None,
        scale,
        mode,
        align_corners,
        args.get("recompute_scale_factor"),
        args.get("antialias", False),
        None,
    )
    if spec.kind is Kind.BARRIER:
        return None
    return Node(kind=spec.kind, notes=tuple(spec.notes), extra=spec.extra, **spec.fields, **common)


def layer_node(call: LayerCall, index: int = 0, rank_hint: int | None = None) -> Node | None:
    """The IR node of one literal call reading ``v{index}`` and writing ``v{index+1}``; ``None``
    when its geometry is not literal or not valid.  ``rank_hint``: the rank of a resize whose
    call does not state it (from its neighbours); 2 when nothing tells."""
    if not call.literal:
        return None
    common: dict[str, Any] = {
        "name": call.position,
        "op_type": call.cls,
        "inputs": (f"v{index}",),
        "outputs": (f"v{index + 1}",),
    }
    if call.cls in libraries.SIGNATURES:
        common["op_type"] = libraries.class_name(call.cls)
        common["in_channels"] = call.int_arg("in_channels")
        common["out_channels"] = call.int_arg("out_channels")
        common["has_bias"] = call.args.get("use_bias", True) is not False
        cin, cout, _ = libraries.CHANNELS.get(call.cls, (None, None, None))
        # the rewrites written with the call's own module prefix (none: the library's usual one)
        extra = {"prefix": call.prefix} if call.prefix else {}
        for key, param in (("in_source", cin), ("filters_source", cout), ("features_source", cout)):
            if param in call.sources:
                extra[key] = call.sources[param]
        return libraries.library_node(call.cls, call.args, common, extra)
    rank = class_rank(call.cls)
    if call.cls.startswith(("ConvTranspose", "Conv")) and rank is not None:
        transposed = call.cls.startswith("ConvTranspose")
        window = _window(call, rank, transposed)
        groups = call.args.get("groups", 1)
        if window is None or not _ints(groups, 1):
            return None
        return Node(
            kind=Kind.CONV_TRANSPOSE if transposed else Kind.CONV,
            window=window,
            in_channels=call.int_arg("in_channels"),
            out_channels=call.int_arg("out_channels"),
            groups=groups,
            **common,
        )
    if call.cls == "PixelShuffle":
        factor = call.args.get("upscale_factor")
        if not _ints(factor, 1) or isinstance(factor, tuple):
            return None
        return Node(kind=Kind.DEPTH_TO_SPACE, block=(factor, factor), **common)
    return _resize_node(call, common, resize_rank(call) or rank_hint or 2)


def element_node(element: LayerCall | str | None, index: int, rank_hint: int | None) -> Node:
    """A ``nn.Sequential`` element as a node: its layer, a pointwise op, or a barrier."""
    if isinstance(element, LayerCall):
        node = layer_node(element, index, rank_hint)
        if node is not None:
            return node
    name = element.position if isinstance(element, LayerCall) else f"element{index}"
    kind = Kind.BARRIER
    module, _, cls = element.rpartition(".") if isinstance(element, str) else ("", "", "")
    torch_pointwise = module.startswith(TORCH_NN) and cls in POINTWISE
    if torch_pointwise or (isinstance(element, str) and libraries.pointwise(element)):
        kind = Kind.POINTWISE
    return Node(
        name=name,
        op_type=str(element.cls if isinstance(element, LayerCall) else element),
        kind=kind,
        inputs=(f"v{index}",),
        outputs=(f"v{index + 1}",),
    )
