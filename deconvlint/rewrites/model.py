"""Rewrite a torch model so that its upsampling layers paint no checkerboard: :func:`fix`.

:func:`fix` checks a copy of the model with the rules and settings of :func:`deconvlint.check`,
replaces every transposed convolution that a DL001-DL004 finding (at or above ``fail_on``)
names, all layers of a stack in one go, by one strategy (see :mod:`deconvlint.rewrites.replacements`),
and verifies its own work before returning: every replacement gives the output shape of the
layer it replaces (on the example inputs and one sample longer on every axis), the whole model
gives the same output shapes, and a check of the result names none of the replaced layers.  A
layer the strategy cannot replace with the same output shape is left alone, with the reason, in
``changes`` and as a warning; the model never changes shape silently.

>>> import torch, deconvlint
>>> up = torch.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
>>> model, x = torch.nn.Sequential(up), torch.randn(1, 8, 16, 16)
>>> fixed, changes, report = deconvlint.fix(model, x)
>>> changes[0].after
'nn.ConvTranspose2d(8, 4, kernel_size=4, stride=2, padding=1)'
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

from deconvlint.api import resolve_settings
from deconvlint.config.settings import Settings
from deconvlint.core.ir import Graph, Node
from deconvlint.engine import check_graph
from deconvlint.errors import FixError
from deconvlint.frontends.load import load
from deconvlint.frontends.target import as_input_tuple
from deconvlint.report import FileResult, Finding, Report, severity_rank
from deconvlint.rewrites import replacements
from deconvlint.rules.catalogue import load_catalogue, rules_where

__all__ = ["STRATEGIES", "Change", "FixResult", "fix"]

STRATEGIES = replacements.STRATEGIES
#: The rules whose findings name layers to replace, and that the result must no longer report.


def fixed_rules() -> tuple[str, ...]:
    """The rules :func:`fix` answers by replacing layers: those that judge coverage (DL001-DL004;
    the catalogue's ``pattern: coverage``)."""
    return rules_where(pattern="coverage")


@dataclass
class Change:
    """One flagged layer: replaced (``after`` is the new code) or left alone (``reason``)."""

    node: str  # the qualified module name
    strategy: str
    rules: tuple[str, ...]  # the findings that named it
    before: str  # the layer as torch prints it
    after: str | None = None
    reason: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def replaced(self) -> bool:
        return self.after is not None

    def __str__(self) -> str:
        """``node: before -> after``; a multi-line ``after`` goes below, indented."""
        if self.after is None:
            return f"{self.node}: left alone ({self.strategy}): {self.reason}"
        if "\n" not in self.after:
            return f"{self.node}: {self.before} -> {self.after}"
        after = "\n".join("    " + line for line in self.after.splitlines())
        return f"{self.node}: {self.before} ->\n{after}"


class FixResult(NamedTuple):
    """``model``: the new module; ``changes``: one per flagged layer; ``report``: its check."""

    model: nn.Module
    changes: list[Change]
    report: Report

    @property
    def replaced(self) -> list[Change]:
        return [c for c in self.changes if c.replaced]

    @property
    def skipped(self) -> list[Change]:
        return [c for c in self.changes if not c.replaced]


def fix(
    model: nn.Module,
    example_inputs: Any,
    strategy: str = "kernel",
    *,
    fail_on: str | None = None,
    config: str | os.PathLike | Settings | None = None,
    timeout: float | None = None,
) -> FixResult:
    """A copy of ``model`` with every flagged transposed convolution replaced by ``strategy``.

    ``strategy``: ``"kernel"`` (same class, kernel a multiple of the stride; the state_dict
    keys stay, the weight's shape changes), ``"resize-conv"`` (nearest ``Upsample`` + ``Conv``)
    or ``"subpixel"`` (``Conv`` + ``PixelShuffle``, ICNR-initialised; 2-D only).  New weights
    are initialised as torch initialises a new layer (the biases are kept); retrain or
    fine-tune.  ``fail_on`` (default: the configuration's, else ``"warning"``) is the lowest
    severity of a finding that asks for a replacement: ``"info"`` also replaces layers that a
    later blur compensates.  ``config`` and ``timeout`` are those of :func:`deconvlint.check`.

    Returns ``FixResult(model, changes, report)``; ``model`` is untouched.  Raises
    ``FixError`` when the result fails its own verification (a bug: please report it).

    >>> generator = nn.Sequential(
    ...     nn.ConvTranspose2d(100, 16, 4),
    ...     nn.ReLU(),
    ...     nn.ConvTranspose2d(16, 3, 3, stride=2, padding=1, output_padding=1),
    ... )
    >>> fixed, changes, report = fix(generator, torch.randn(1, 100, 1, 1), "resize-conv")
    >>> print(changes[0])
    2: nn.ConvTranspose2d(16, 3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1)) ->
        nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(16, 3, kernel_size=3, padding=1),
        )
    >>> fixed(torch.randn(1, 100, 1, 1)).shape == generator(torch.randn(1, 100, 1, 1)).shape
    True
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"deconvlint.fix expects a torch.nn.Module, not {type(model).__name__}")
    inputs = as_input_tuple(example_inputs)
    if not inputs:
        raise ValueError("deconvlint.fix needs example_inputs to verify the output shapes")
    settings = resolve_settings(config, fail_on=fail_on, stacklevel=2)
    fixed = copy.deepcopy(model)
    graph, findings, _ = _check(fixed, inputs, settings, timeout)
    targets = _targets(graph, findings, settings.fail_on)
    calls, output_shapes = _probe(fixed, inputs, list(targets))
    nodes = {n.name: n for n in graph.nodes}
    changes, plans = [], {}
    for name, (node_name, rules) in targets.items():
        change, new = _replace_plan(fixed, name, nodes[node_name], rules, strategy, calls)
        changes.append(change)
        if new is not None:
            plans[name] = new
    _install_verified(fixed, inputs, output_shapes, plans, {c.node: c for c in changes})
    report = _verify(fixed, inputs, settings, timeout, changes)
    for change in changes:
        if not change.replaced:
            warnings.warn(f"deconvlint.fix: {change}", UserWarning, stacklevel=2)
    return FixResult(fixed, changes, report)


# --- what to replace -------------------------------------------------------------------------------


def _check(
    model: nn.Module, inputs: tuple, settings: Settings, timeout: float | None
) -> tuple[Graph, list[Finding], str]:
    loaded = load(model, inputs, timeout=timeout)
    return loaded.graph, check_graph(loaded.graph, settings), loaded.frontend


def module_name(node: str) -> str:
    """The module a node was read from: ``decoder.up#2`` (its second call) is ``decoder.up``."""
    return node.partition("#")[0]


def _named(finding: Finding) -> list[str]:
    """The layers a finding blames: its node for a layer rule (DL001/DL002), its chain for a
    stack or output rule (DL003/DL004)."""
    if load_catalogue()[finding.rule].scope != "layer":
        return list(finding.metrics.get("nodes", []))
    return [finding.node]


def _targets(
    graph: Graph, findings: list[Finding], fail_on: str
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Module name -> (a node read from it, the rules that named it), in graph order."""
    threshold = severity_rank(fail_on)
    rules: dict[str, set[str]] = {}
    fixed = fixed_rules()
    for f in findings:
        if f.rule in fixed and severity_rank(f.severity) >= threshold:
            for node in _named(f):
                rules.setdefault(node, set()).add(f.rule)
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for node in graph.nodes:  # graph order; a module called twice appears once
        if node.name in rules:
            name = module_name(node.name)
            first, before = out.get(name, (node.name, ()))
            out[name] = (first, tuple(sorted({*before, *rules[node.name]})))
    return out


# --- shapes ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _probing(model: nn.Module) -> Iterator[None]:
    """Eval mode and no grad for a forward that must change nothing (BatchNorm statistics,
    spectral-norm vectors); the training flags are restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _shapes(value: Any) -> Any:
    """The shapes of every tensor in a (nested) output, in the output's own structure."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return [_shapes(v) for v in value]
    if isinstance(value, dict):
        return {k: _shapes(v) for k, v in value.items()}
    return type(value).__name__


@dataclass
class _Call:
    """One call of a layer on the example inputs: its input (shape, dtype) and keywords."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    kwargs: dict[str, Any]
    output_shape: tuple[int, ...]


def _run(model: nn.Module, inputs: tuple) -> Any:
    try:
        with _probing(model):
            return _shapes(model(*inputs))
    except Exception as exc:  # the model's own code
        raise FixError(
            f"{type(model).__name__} fails on the example inputs: {type(exc).__name__}: {exc}"
        ) from exc


def _probe(model: nn.Module, inputs: tuple, names: list[str]) -> tuple[dict[str, list], Any]:
    """Each target's calls on the example inputs, and the model's output shapes."""
    calls: dict[str, list[_Call]] = {name: [] for name in names}
    handles = []
    for name in names:
        module = _submodule(model, name)
        if module is None:
            continue

        def record(mod: nn.Module, args: tuple, kwargs: dict, out: Any, name: str = name) -> None:
            if args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
                call = _Call(tuple(args[0].shape), args[0].dtype, dict(kwargs), tuple(out.shape))
                calls[name].append(call)

        handles.append(module.register_forward_hook(record, with_kwargs=True))
    try:
        output_shapes = _run(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return calls, output_shapes


def _submodule(model: nn.Module, name: str) -> nn.Module | None:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None


def _layer_shape_problem(old: nn.Module, new: nn.Module, calls: list[_Call]) -> str | None:
    """Why ``new`` would not give ``old``'s output shape, on each recorded input and on one
    sample more per spatial axis (the algebra holds for every length; this is the evidence)."""
    if not calls:
        return "it did not run on the example inputs, so its replacement cannot be verified"
    for call in calls:
        grown = (*call.shape[:2], *(n + 1 for n in call.shape[2:]))
        for shape in (call.shape, grown) if not call.kwargs else (call.shape,):
            x = torch.zeros(shape, dtype=call.dtype, device=old.weight.device)
            try:
                with _probing(old), _probing(new):
                    want, got = (
                        tuple(old(x, **call.kwargs).shape),
                        tuple(new(x, **call.kwargs).shape),
                    )
            except Exception as exc:
                keywords = ", ".join(f"{k}=" for k in call.kwargs)
                how = f" (the model calls it with {keywords})" if keywords else ""
                return f"the replacement fails on an input of shape {shape}{how}: {exc}"
            if want != got:
                return f"the replacement would change the output shape {want} to {got}"
    return None


def _replace_plan(
    model: nn.Module,
    name: str,
    node: Node,
    rules: tuple[str, ...],
    strategy: str,
    calls: dict[str, list[_Call]],
) -> tuple[Change, nn.Module | None]:
    module = _submodule(model, name)
    if module is None:
        change = Change(
            name,
            strategy,
            rules,
            node.op_type,
            reason="it is a functional call, "
            "not a module; rewrite it by hand (see the suggestions of check)",
        )
        return change, None
    change = Change(name, strategy, rules, replacements.describe(module))
    plan = replacements.plan(node, module, strategy)
    if plan.module is not None:
        plan.reason = _layer_shape_problem(module, plan.module, calls[name])
    if plan.reason is not None:
        change.reason = plan.reason
        return change, None
    change.after, change.params = plan.code, plan.params
    return change, plan.module


# --- installing and verifying ----------------------------------------------------------------------


def _install(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` wherever the module ``name`` is registered (a shared module has several
    names); returns the module it replaced."""
    old = model.get_submodule(name)
    for qualified, module in model.named_modules(remove_duplicate=False):
        if module is old and qualified:
            parent, _, child = qualified.rpartition(".")
            setattr(model.get_submodule(parent), child, new)
    return old


def _install_verified(
    model: nn.Module,
    inputs: tuple,
    output_shapes: Any,
    plans: dict[str, nn.Module],
    changes: dict[str, Change],
) -> None:
    """Install every plan; when the model then fails or changes its output shapes (a layer
    called in a way its replacement does not take), install them one by one and leave out
    those that break it."""
    olds = {name: _install(model, name, new) for name, new in plans.items()}
    problem = _output_problem(model, inputs, output_shapes)
    if problem is None:
        return
    for name in plans:
        _install(model, name, olds[name])
    for name, new in plans.items():
        _install(model, name, new)
        problem = _output_problem(model, inputs, output_shapes)
        if problem is not None:
            _install(model, name, olds[name])
            changes[name].after, changes[name].reason = None, problem
    if _output_problem(model, inputs, output_shapes) is not None:
        raise FixError(f"the fixed model's output shapes differ: {problem}")


def _output_problem(model: nn.Module, inputs: tuple, output_shapes: Any) -> str | None:
    try:
        shapes = _run(model, inputs)
    except FixError as exc:
        return f"the model fails with the replacement: {exc}"
    if shapes != output_shapes:
        return f"the model's output shapes would change from {output_shapes} to {shapes}"
    return None


def _verify(
    model: nn.Module, inputs: tuple, settings: Settings, timeout: float | None, changes: list
) -> Report:
    """The check of the fixed model; no DL001-DL004 finding may name a replaced layer."""
    _, findings, frontend = _check(model, inputs, settings, timeout)
    replaced = [c.node for c in changes if c.replaced]
    threshold = severity_rank(settings.fail_on)

    def blames_replaced(f: Finding) -> bool:
        return any(
            module_name(n) == r or n.startswith(r + ".") for n in _named(f) for r in replaced
        )

    fixed = fixed_rules()
    wrong = [
        f
        for f in findings
        if f.rule in fixed and severity_rank(f.severity) >= threshold and blames_replaced(f)
    ]
    report = Report([FileResult(f"<{type(model).__name__}>", findings)], frontend=frontend)
    if wrong:
        raise FixError(
            "deconvlint.fix: the replaced layers are still reported:\n"
            + "\n".join(f"{f.node}: {f.rule} {f.message}" for f in wrong)
        )
    return report
