"""The readers' shared values (``frontends/torch/values.py``) and failure reasons (``spec.py``)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from deconvlint.core.ir import Kind  # noqa: E402
from deconvlint.errors import TraceError  # noqa: E402
from deconvlint.frontends.torch.spec import (  # noqa: E402
    MAX_REASON,
    UNKNOWN,
    ReaderError,
    Spec,
    TensorArg,
    failure_reason,
)
from deconvlint.frontends.torch.values import TupleValue, all_fixed, unwrap, wrap  # noqa: E402

pytestmark = pytest.mark.torch


def test_wrap_carries_a_tensor_and_unwrap_gives_it_back() -> None:
    t = torch.ones(1, 2, 3)
    arg = wrap(t, fixed=True)
    assert isinstance(arg, TensorArg)
    assert (arg.value, arg.shape, arg.fixed) == (None, (1, 2, 3), True)
    assert unwrap(arg) is t
    assert wrap(3, fixed=False) == 3


def test_unwrap_goes_through_containers_and_keeps_their_types() -> None:
    t = torch.zeros(2)
    nested = (wrap(t, True), [TensorArg("x", (1,))], {"k": wrap(t, False), "n": 5})
    real = unwrap(nested)
    assert isinstance(real, tuple) and isinstance(real[1], list)
    assert real[0] is t and real[1] == [UNKNOWN] and real[2]["k"] is t and real[2]["n"] == 5


def test_all_fixed_needs_every_tensor_fixed() -> None:
    fixed, free = TensorArg(None, (1,), fixed=True), TensorArg(None, (1,), fixed=False)
    assert all_fixed((fixed, [fixed], {"a": fixed}, 2))
    assert not all_fixed((fixed, [free]))
    assert not all_fixed({"a": fixed, "b": free})


def test_tuple_value_elements() -> None:
    pool = TupleValue(Spec(Kind.MAX_POOL, ("x",)), "pool.0", [(1, 2, 4, 4), (1, 2, 4, 4)])
    assert pool.spec.tuple_output == "indices"
    assert pool.element(0).value == "pool.0" and pool.element(0).shape == (1, 2, 4, 4)
    assert pool.element(1).value is None and pool.element(1).indices_of is pool.spec


def test_failure_reason() -> None:
    assert failure_reason(ValueError("shapes differ\n  at layer 3")) == "ValueError: shapes differ"
    assert failure_reason(ReaderError("\n the model\tdoes not run\n")) == "the model does not run"
    assert failure_reason(TraceError("no reader")) == "no reader"
    assert failure_reason(KeyError()) == "KeyError"
    long = failure_reason(RuntimeError("x" * 1000))
    assert len(long) == MAX_REASON and long.endswith("...")
    exact = "y" * (MAX_REASON - len("RuntimeError: "))
    assert failure_reason(RuntimeError(exact)) == f"RuntimeError: {exact}"
