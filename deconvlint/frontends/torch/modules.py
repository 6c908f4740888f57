"""The module table: a call of a standard ``torch.nn`` module (a leaf of the trace) to its Spec.

The geometry comes from the module's attributes, the shapes from the reader; ``op_type`` is the
class name (``ConvTranspose2d``; ``ParametrizedConv1d`` of a weight-normalised conv shows as
``Conv1d``).  Only the first argument is followed as data (``MaxUnpool``'s indices are not).

A depthwise conv module is a fixed filter when its weight is equal on every channel, whether
or not it is trained, as in the model's ONNX export (a trainable one gets a note); any other
learnable weight is all-ones in the model.

>>> import torch
>>> spec = module_spec(torch.nn.ConvTranspose2d(8, 4, 3, 2, 1, 1), (TensorArg("x", (1, 8, 4, 4)),),
...                    {}, (1, 4, 8, 8))
>>> spec.op_type, spec.fields["window"][0]
('ConvTranspose2d', WindowAxis(kernel=3, stride=2, dilation=1, pads_begin=1, pads_end=1, output_padding=1))
"""

from __future__ import annotations

from typing import Any

from deconvlint.core.ir import Kind
from deconvlint.frontends.torch.ops import (
    adaptive_spec,
    conv_spec,
    conv_transpose_spec,
    pad_spec,
    pool_spec,
    unpool_spec,
)
from deconvlint.frontends.torch.resize import interpolate_spec
from deconvlint.frontends.torch.spec import Spec, TensorArg, barrier, data_inputs, normal_dim

# Modules whose every element is computed from the same position (or normalised per channel).
_POINTWISE_FILES = (
    "torch.nn.modules.activation",
    "torch.nn.modules.batchnorm",
    "torch.nn.modules.instancenorm",
    "torch.nn.modules.normalization",
    "torch.nn.modules.dropout",
)
_NOT_POINTWISE = frozenset({"MultiheadAttention", "Softmax", "LogSoftmax", "Softmin", "GLU"})
_POINTWISE_NAMES = frozenset({"Identity", "Softmax2d", "ChannelShuffle"})


def is_standard_leaf(module: Any) -> bool:
    """torch.fx's default leaf test: a ``torch.nn`` module other than a Sequential."""
    import torch

    name = type(module).__module__ or ""
    return name.startswith(("torch.nn", "torch.ao.nn")) and not isinstance(
        module, torch.nn.Sequential
    )


def is_upsampling_module(module: Any) -> bool:
    """ConvTranspose*, Upsample, PixelShuffle, MaxUnpool*: the modules the completeness check
    requires in the graph whenever the forward calls them."""
    from torch import nn

    kinds = (nn.modules.conv._ConvTransposeNd, nn.Upsample, nn.PixelShuffle)
    return isinstance(module, (*kinds, nn.modules.pooling._MaxUnpoolNd))


def class_name(module: Any) -> str:
    """The user-facing class name (the original class of a parametrized module)."""
    cls = type(module)
    if cls.__name__.startswith("Parametrized") and cls.__bases__:
        return cls.__bases__[0].__name__
    return cls.__name__


def _weight(module: Any, name: str = "weight") -> TensorArg:
    tensor = getattr(module, name, None)
    if tensor is None:
        return TensorArg()
    fixed = not _trained(module, name, tensor)
    return TensorArg(None, tuple(tensor.shape), tensor=tensor, fixed=fixed)


def _trained(module: Any, name: str, tensor: Any) -> bool:
    """A parameter with ``requires_grad``, or a parametrized tensor (weight_norm) made from
    one: that is read from the parametrization's parameters, as the reader computes the
    tensor under ``no_grad``, where it never requires grad."""
    chains = module._modules.get("parametrizations")  # getattr: an exception when absent
    if chains is not None and name in chains:
        chain = chains[name]  # its originals first: a walk of its modules only if none trains
        originals = chain._parameters.values()
        return any(p is not None and p.requires_grad for p in originals) or any(
            p.requires_grad for p in chain.parameters()
        )
    return bool(getattr(tensor, "requires_grad", False))


def _conv(
    module: Any, x: TensorArg, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
) -> Spec:
    from torch import nn

    weight, bias = _weight(module), _weight(module, "bias")
    bias_arg = bias if bias.tensor is not None else None
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        output_size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
        return conv_transpose_spec(
            x, weight, bias_arg, module.stride, module.padding, module.output_padding,
            module.groups, module.dilation, out, fit_output=output_size is not None,
        )  # fmt: skip
    extra = {} if module.padding_mode == "zeros" else {"padding_mode": module.padding_mode}
    return conv_spec(
        x, weight, bias_arg, module.stride, module.padding, module.dilation, module.groups,
        extra=extra,
    )  # fmt: skip


def _pool(module: Any, x: TensorArg, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Spec | None:
    from torch import nn

    m = nn.modules.pooling
    rank = _class_rank(module)
    if rank is None:
        return None
    if isinstance(module, m._MaxUnpoolNd):
        indices = kwargs.get("indices", args[1] if len(args) > 1 else None)
        output_size = kwargs.get("output_size", args[2] if len(args) > 2 else None)
        bound = {
            "kernel_size": module.kernel_size,
            "stride": module.stride,
            "padding": module.padding,
            "output_size": output_size,
        }
        return unpool_spec(x, indices, rank, bound)
    if isinstance(module, m._AdaptiveAvgPoolNd):
        return adaptive_spec(Kind.AVG_POOL, x, rank, module.output_size, False)
    if isinstance(module, m._AdaptiveMaxPoolNd):
        return adaptive_spec(Kind.MAX_POOL, x, rank, module.output_size, module.return_indices)
    keys = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad")
    bound = {k: getattr(module, k) for k in keys if hasattr(module, k)}
    if isinstance(module, m._MaxPoolNd):
        bound["return_indices"] = module.return_indices
        return pool_spec(Kind.MAX_POOL, x, rank, bound)
    if isinstance(module, (m._AvgPoolNd, m._LPPoolNd)):
        bound["dilation"] = 1
        return pool_spec(Kind.AVG_POOL, x, rank, bound)
    return None


def _class_rank(module: Any) -> int | None:
    name = type(module).__name__
    return int(name[-2]) if name[-1:] == "d" and name[-2:-1] in ("1", "2", "3") else None


def module_spec(
    module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out_shape: Any
) -> Spec | None:
    """The Spec of ``module(*args, **kwargs)``; ``None`` when no argument carries data."""
    inputs = data_inputs(args, kwargs)
    if not inputs:
        return None
    x = args[0] if args and isinstance(args[0], TensorArg) else kwargs.get("input", TensorArg())
    spec = _spec(module, x if isinstance(x, TensorArg) else TensorArg(), args, kwargs, out_shape)
    if spec is None:
        spec = barrier(args, kwargs)
    spec.op_type = class_name(module)
    return spec


def _spec(
    module: Any, x: TensorArg, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
) -> Spec | None:
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv(module, x, args, kwargs, out)
    if isinstance(module, nn.Upsample):
        return interpolate_spec(
            x, module.size, module.scale_factor, module.mode, module.align_corners,
            getattr(module, "recompute_scale_factor", None), False, out,
        )  # fmt: skip
    if isinstance(module, nn.PixelShuffle):
        r = module.upscale_factor
        return Spec(Kind.DEPTH_TO_SPACE, data_inputs(x), {"block": (r, r)})
    if isinstance(module, nn.PixelUnshuffle):
        r = module.downscale_factor
        return Spec(Kind.SPACE_TO_DEPTH, data_inputs(x), {"block": (r, r)})
    pool = _pool(module, x, args, kwargs)
    if pool is not None:
        return pool
    padding = nn.modules.padding
    pads = (padding._ConstantPadNd, padding._ReflectionPadNd, padding._ReplicationPadNd)
    pads += (getattr(padding, "_CircularPadNd", padding._ConstantPadNd),)
    if isinstance(module, pads):
        mode = {"Reflection": "reflect", "Replication": "replicate", "Circular": "circular"}
        name = next((v for k, v in mode.items() if type(module).__name__.startswith(k)), "constant")
        return pad_spec(x, list(module.padding), name, _class_rank(module))
    if isinstance(module, (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.GLU)):
        axis = normal_dim(module.dim, x.rank)
        return Spec(Kind.POINTWISE, data_inputs(x)) if axis in (0, 1) else barrier(x)
    cls = type(module)
    name = cls.__name__
    if name in _POINTWISE_NAMES or (
        cls.__module__ in _POINTWISE_FILES and name not in _NOT_POINTWISE
    ):
        return Spec(Kind.POINTWISE, data_inputs(x))
    return None
