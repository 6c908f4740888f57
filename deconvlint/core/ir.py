"""The framework-neutral graph that every front end produces and every rule reads.

A front end (ONNX, torch) translates a model into a :class:`Graph`: a list of :class:`Node` in
topological order, connected by value names.  Only the *data* edges are kept: weights, shape
computations and other constants are folded into node attributes by the front end, so that
``Node.inputs`` lists exactly the tensors that carry activations.

Geometry is stored per spatial axis, in the order of the tensor's spatial dimensions (for NCHW:
H then W).  Nothing here knows about onnx or torch, and nothing here computes coverage: that is
:mod:`deconvlint.core.geometry` and :mod:`deconvlint.core.analysis`.

>>> ct = Node(name="up1", op_type="ConvTranspose", kind=Kind.CONV_TRANSPOSE,
...           inputs=("x",), outputs=("y",),
...           window=(WindowAxis(kernel=3, stride=2, pads_begin=1, pads_end=1, output_padding=1),) * 2)
>>> ct.spatial_rank
2
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


class Kind(str, enum.Enum):
    """What an op does to the spatial coverage pattern."""

    CONV_TRANSPOSE = "conv_transpose"  # scatter with stride: the upsampler the rules are about
    CONV = "conv"  # gather with stride (stride 1: a box of the dilated kernel)
    AVG_POOL = "avg_pool"  # a conv whose kernel is 1/k (a fixed filter)
    MAX_POOL = "max_pool"  # window max (data dependent; modelled as max of the window)
    RESIZE = "resize"  # Resize / Upsample / interpolate, see ResizeSpec
    DEPTH_TO_SPACE = "depth_to_space"  # PixelShuffle / DepthToSpace, see Node.block
    SPACE_TO_DEPTH = "space_to_depth"  # PixelUnshuffle / SpaceToDepth, see Node.block
    MAX_UNPOOL = "max_unpool"  # MaxUnpool: writes each input into one slot of its window
    SHIFT = "shift"  # Pad / Slice on spatial axes: see Node.shift
    POINTWISE = "pointwise"  # passes the pattern through unchanged (activations, norms, bias)
    JOIN = "join"  # several data inputs meet (Add, Mul, Concat on channels): paths stay separate
    BARRIER = "barrier"  # an op whose spatial effect is unknown: paths restart after it


#: Kinds that raise the spatial resolution; the rules walk these.
UPSAMPLING_KINDS = frozenset(
    {Kind.CONV_TRANSPOSE, Kind.RESIZE, Kind.DEPTH_TO_SPACE, Kind.MAX_UNPOOL}
)


@dataclass(frozen=True)
class WindowAxis:
    """Sliding-window geometry of one spatial axis (conv, transposed conv, pool, unpool).

    ``pads_begin``/``pads_end`` are the resolved pads of that axis (auto_pad and output_shape
    already turned into explicit numbers by the front end).  For a transposed conv the pads crop
    the full output; ``output_padding`` appends samples at the high end.
    """

    kernel: int
    stride: int = 1
    dilation: int = 1
    pads_begin: int = 0
    pads_end: int = 0
    output_padding: int = 0

    @property
    def effective_kernel(self) -> int:
        """Extent of the dilated kernel: ``d*(k-1) + 1``."""
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class ResizeSpec:
    """An interpolating resize along the spatial axes.

    ``scales`` are output/input per spatial axis as exact fractions (``None``: could not be
    resolved statically; the analysis then says the scale is unknown rather than guess).
    ``input_lengths``/``output_lengths`` are the static spatial lengths when known (needed for
    ``align_corners`` and ``half_pixel_symmetric``, whose coordinate maps depend on them).
    Modes and coordinate names follow the ONNX Resize-19 spec; a torch front end maps
    ``F.interpolate`` onto the same names (``nearest`` -> asymmetric/floor, ``nearest-exact`` ->
    half_pixel/round_prefer_ceil, ``align_corners=True`` -> align_corners, else half_pixel or
    pytorch_half_pixel).
    """

    mode: str  # "nearest" | "linear" | "cubic"
    scales: tuple[Fraction | None, ...]
    coordinate_transformation_mode: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_coeff_a: float = -0.75
    antialias: bool = False
    input_lengths: tuple[int | None, ...] = ()
    output_lengths: tuple[int | None, ...] = ()

    @property
    def spatial_rank(self) -> int:
        return len(self.scales)


@dataclass(frozen=True)
class ShiftAxis:
    """Index map of Pad/Slice on one spatial axis: output o reads input ``offset + o*step``.

    Pad by p at the begin is ``offset=-p``; Slice(start, step) is ``offset=start, step=step``.
    """

    offset: int = 0
    step: int = 1


@dataclass(frozen=True)
class LayerWeights:
    """A layer's trained parameters, in the framework's layout, as float64.

    ``kernel``: ``(C_in, C_out/groups, k...)`` for a transposed conv, ``(C_out, C_in/groups,
    k...)`` for a conv (ONNX and PyTorch agree); ``bias``: ``(C_out,)`` or ``None``.
    """

    kernel: np.ndarray
    bias: np.ndarray | None = None


#: Reads a layer's weights when a rule asks for them (``None``: they cannot be read).  Front
#: ends hand one to every conv and transposed conv; structural rules never call it, so checking
#: the architecture reads no weight tensor.  This is the one seam for weight access: an ONNX
#: reader that skims the file only needs to supply another callable.
WeightSource = Callable[[], "LayerWeights | None"]


@dataclass
class Node:
    """One op of the model, reduced to what coverage analysis needs."""

    name: str  # ONNX node name, or torch qualified module name; unique within the graph
    op_type: str  # the framework's op name, shown to users: "ConvTranspose", "Resize", ...
    kind: Kind
    inputs: tuple[str, ...]  # data inputs only, in order
    outputs: tuple[str, ...]
    window: tuple[WindowAxis, ...] = ()  # CONV_TRANSPOSE, CONV, *_POOL, MAX_UNPOOL
    resize: ResizeSpec | None = None  # RESIZE
    block: tuple[int, ...] = ()  # DEPTH_TO_SPACE / SPACE_TO_DEPTH block size per spatial axis
    depth_to_space_mode: str = "CRD"  # "CRD" (PyTorch PixelShuffle) or "DCR" (ONNX default, TF)
    shift: tuple[ShiftAxis, ...] = ()  # SHIFT
    # A conv whose kernel is the same fixed filter on every channel (depthwise, identical
    # across channels, e.g. a [1,3,3,1] blur): its real taps, shape (k_1, ..., k_D).  The
    # analysis uses these instead of the all-ones kernel.
    fixed_kernel: np.ndarray | None = None
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int = 1
    has_bias: bool = False
    # The layer's trained weights, read lazily (CONV_TRANSPOSE, CONV); see WeightSource.
    weights: WeightSource | None = field(default=None, repr=False, compare=False)
    # Where the layer was written, for users: "path/to/model.py:42" or "...:42:9" (torch front
    # end); for a layer an installed library builds, the user's line that built it.
    source: str | None = None
    # That library's line, when ``source`` is the user's call around it.
    library_source: str | None = None
    # Front-end notes worth showing with a finding (e.g. "scale could not be resolved").
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spatial_rank(self) -> int:
        """Number of spatial axes this op acts on (0 for pointwise/join/barrier)."""
        if self.window:
            return len(self.window)
        if self.resize is not None:
            return self.resize.spatial_rank
        if self.block:
            return len(self.block)
        if self.shift:
            return len(self.shift)
        return 0


@dataclass
class Graph:
    """A model as a DAG of :class:`Node` in topological order.

    ``inputs`` are the data inputs of the model (coverage starts there, uniform); ``outputs``
    the graph outputs (DL004 judges the coverage arriving there).  A node whose data input is not
    produced by any node and is not a graph input (e.g. an outer-scope value of a subgraph) is
    treated as a path start too.
    """

    name: str
    nodes: list[Node]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # Static shapes where known (None or a str for unknown/symbolic dims); for messages only.
    shapes: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # Model-level notes (e.g. "shape inference failed: ...").
    notes: list[str] = field(default_factory=list)
    # What --probe measured, by node name (deconvlint.probe.measure.Measurement); None: not probed.
    measurements: dict[str, Any] | None = None
    # Notes the report shows with the findings: the reader used when the first one's graph
    # was not used, layers the forward ran that no reader could place on a path.
    report_notes: list[str] = field(default_factory=list)

    def producers(self) -> dict[str, Node]:
        """Map each value name to the node that produces it."""
        return {out: node for node in self.nodes for out in node.outputs}
