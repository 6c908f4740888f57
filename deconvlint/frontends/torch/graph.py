"""Collects the IR nodes one torch reader finds, names them, and finishes the :class:`Graph`.

Names, the same for every reader:

* a module call: its qualified name (the key of ``model.named_modules()``), ``decoder.up.0``;
  a module called again: ``decoder.act#2``;
* a functional call: the qualified name of the module whose forward made it, a colon and the
  function's name, ``#n`` from the second such call in that module on: ``decoder:interpolate``,
  ``decoder:interpolate#2``; the root module's calls start with the colon, ``:interpolate``.

Nodes whose outputs reach no graph output (a condition such as ``x.mean() > 0``, a shape
computation) are dropped when the graph is finished.

>>> from deconvlint.frontends.torch.spec import Spec
>>> from deconvlint.core.ir import Kind
>>> builder = GraphBuilder("demo")
>>> builder.function_name("decoder", "interpolate"), builder.function_name("decoder", "interpolate")
('decoder:interpolate', 'decoder:interpolate#2')
>>> builder.function_name("", "tanh")
'tanh'
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from deconvlint.core.ir import Graph, Node
from deconvlint.frontends.torch.spec import Spec


class GraphBuilder:
    """Nodes in the order the reader met them (a topological order)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.shapes: dict[str, tuple[Any, ...]] = {}
        self.notes: list[str] = []
        self._calls: Counter[str] = Counter()
        self._values: set[str] = set()

    def value(self, hint: str) -> str:
        """A fresh IR value name based on ``hint``."""
        candidate, k = hint or "v", 0
        while candidate in self._values:
            k += 1
            candidate = f"{hint}_{k}"
        self._values.add(candidate)
        return candidate

    def _counted(self, base: str) -> str:
        self._calls[base] += 1
        count = self._calls[base]
        return base if count == 1 else f"{base}#{count}"

    def module_name(self, qualified: str) -> str:
        return self._counted(qualified)

    def function_name(self, module: str, function: str) -> str:
        # "decoder:interpolate"; at the top level just "tanh" (a report reads "<Decoder>:tanh")
        return self._counted(f"{module}:{function}" if module else function)

    def add(
        self,
        spec: Spec,
        name: str,
        op_type: str,
        outputs: tuple[str, ...],
        source: str | None = None,
    ) -> Node:
        node = Node(
            name=name,
            op_type=spec.op_type or op_type,
            kind=spec.kind,
            inputs=spec.inputs,
            outputs=outputs,
            source=source,
            library_source=getattr(source, "library", None),
            notes=tuple(dict.fromkeys(spec.notes)),
            extra=dict(spec.extra),
            **{k: v for k, v in spec.fields.items() if v is not None},
        )
        self.nodes.append(node)
        return node

    def finish(self, inputs: tuple[str, ...], outputs: tuple[str, ...], keep: Any = ()) -> Graph:
        """The graph, without the nodes that feed no output nor a node named in ``keep``."""
        keep = set(keep)
        live = live_values(self.nodes, outputs, keep)
        kept = [node for node in self.nodes if live.intersection(node.outputs)]
        used = set(inputs) | set(outputs) | {v for n in kept for v in (*n.inputs, *n.outputs)}
        return Graph(
            name=self.name,
            nodes=kept,
            inputs=inputs,
            outputs=tuple(dict.fromkeys(outputs)),
            shapes={k: v for k, v in self.shapes.items() if k in used},
            notes=list(dict.fromkeys(self.notes)),
        )


def live_values(nodes: list[Node], outputs: Any, keep: Any = ()) -> set[str]:
    """The values that feed one of ``outputs`` (or a node named in ``keep``), those included."""
    live = set(outputs)
    for node in reversed(nodes):
        if node.name in keep:
            live.update(node.outputs)
        if live.intersection(node.outputs):
            live.update(node.inputs)
    return live


def shape_of(value: Any) -> tuple[int | None, ...] | None:
    """The static shape of a tensor-like value (a tensor, a FakeTensor, a ``TensorMetadata``);
    symbolic dims are ``None``."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(d) if isinstance(d, int) else None for d in shape)
    except TypeError:
        return None
