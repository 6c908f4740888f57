"""onnx's classes without ``onnx/__init__``: the same classes as onnx's whichever is imported
first, the same arrays and errors as ``numpy_helper.to_array``, the same attribute values as
``helper.get_attribute_value``; and a one-file check that never imports onnx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from deconvlint.frontends.onnx.proto import _DTYPES, attribute_value, np_dtype, to_array
from tests.support.cli import REPO


def outcome(fn, *args):
    try:
        value = fn(*args)
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    return ("value", value)


DTYPES = [*sorted(_DTYPES), 0, 8, 16, 17, 19, 21, 22]  # and some left to onnx: it decides


@settings(max_examples=400, deadline=None)
@given(
    data_type=st.sampled_from(DTYPES),
    values=st.lists(st.integers(-(2**40), 2**40), max_size=8),
    floats=st.lists(st.floats(allow_nan=True, width=32), max_size=8),
    dims=st.lists(st.integers(0, 4), max_size=3),
    raw=st.booleans(),
    cut=st.integers(0, 3),
)
def test_to_array_is_numpy_helpers(data_type, values, floats, dims, raw, cut) -> None:
    tensor = TensorProto(name="t", data_type=data_type, dims=dims)
    if raw:
        tensor.raw_data = np.array(values, dtype=np.int64).tobytes()[cut:]
    elif data_type in (1, 11):
        getattr(tensor, _DTYPES[data_type][1]).extend(floats)
    elif data_type in _DTYPES:
        field, storage = _DTYPES[data_type][1:]
        info = np.iinfo(storage)
        getattr(tensor, field).extend(int(np.clip(v, info.min, info.max)) for v in values)
    assert outcome(to_array, tensor) == outcome(numpy_helper.to_array, tensor)


def test_every_plain_dtype_is_onnxs() -> None:
    for data_type in range(30):
        assert outcome(np_dtype, data_type) == outcome(helper.tensor_dtype_to_np_dtype, data_type)


def test_attribute_values_are_helpers() -> None:
    tensor = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    graph = helper.make_graph([], "g", [], [])
    attrs = [
        helper.make_attribute("f", 1.5),
        helper.make_attribute("i", 3),
        helper.make_attribute("s", "text"),
        helper.make_attribute("t", tensor),
        helper.make_attribute("g", graph),
        helper.make_attribute("fs", [1.0, 2.0]),
        helper.make_attribute("is", [1, 2]),
        helper.make_attribute("ss", ["a", "b"]),
        helper.make_attribute("ts", [tensor]),
        helper.make_attribute("gs", [graph]),
        helper.make_attribute("empty", [], attr_type=AttributeProto.INTS),
        AttributeProto(name="undefined"),
        AttributeProto(name="ref", ref_attr_name="outer", type=AttributeProto.INT),
        AttributeProto.FromString(b"\x0a\x01a\xa0\x01\x63"),  # type 99, from a newer onnx
    ]
    for attr in attrs:
        assert outcome(attribute_value, attr) == outcome(helper.get_attribute_value, attr)


IMPORT_ORDERS = {
    "deconvlint first": "import deconvlint, onnx",
    "onnx first": "import onnx, deconvlint",
}


@pytest.mark.parametrize("order", list(IMPORT_ORDERS))
def test_one_process_with_onnx_imported_before_or_after(tmp_path: Path, order: str) -> None:
    """The classes are onnx's own whichever is imported first, and both work on one model."""
    script = f"""
{IMPORT_ORDERS[order]}
import numpy as np
from onnx import helper, numpy_helper, shape_inference
from deconvlint.frontends.onnx.reader import load_graph
from deconvlint.frontends.onnx.proto import proto
path = {str(tmp_path / "m.onnx")!r}
node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])
w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1, 2, 4, 4])],
                          [helper.make_tensor_value_info("y", 1, None)], [w])
onnx.save(helper.make_model(graph), path)
g = load_graph(path)
assert g.shapes["y"] == (1, 2, 9, 9), g.shapes
assert proto().ModelProto is onnx.ModelProto and proto().TensorProto is onnx.TensorProto
model = onnx.load(path)
assert isinstance(model, proto().ModelProto)
assert shape_inference.infer_shapes(model).graph.output[0].type.tensor_type.shape.dim[2].dim_value == 9
assert onnx.onnx_ml_pb2.ModelProto is onnx.ModelProto
report = deconvlint.check(model, select=["DL001"])
assert [f.rule for f in report.findings] == ["DL001"], report
print("ok")
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


def test_a_small_static_model_is_checked_without_importing_onnx() -> None:
    """``import onnx`` (ml_dtypes) is most of a one-file run: the CLI never runs onnx/__init__
    on a model of plain dtypes, in its own process or in the shape-inference worker."""
    script = (
        "import sys, runpy\n"
        "sys.argv = ['deconvlint', 'examples/cyclegan_decoder.onnx', '-q']\n"
        "try:\n"
        "    runpy.run_module('deconvlint', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('onnx' in sys.modules, 'ml_dtypes' in sys.modules, code, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.stderr.splitlines()[-1] == "False False 1", proc.stderr
    golden = (REPO / "tests" / "golden" / "cyclegan_decoder.txt").read_text()
    assert proc.stdout.splitlines()[:3] == golden.splitlines()[:3]
