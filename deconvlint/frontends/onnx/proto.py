"""onnx's protobuf classes and C++ library without running ``onnx/__init__``.

``import onnx`` imports ml_dtypes (0.4-0.8 s with ml_dtypes 0.7), which a check of a model of
ordinary dtypes never needs.  The protobuf classes come from onnx's generated ``onnx_ml_pb2``,
which needs only protobuf: :func:`proto` loads that file under a private module name.  Its
descriptors go into protobuf's default pool, where a later ``import onnx`` adds the same file
again (an identical file is accepted) and gets the very same classes, so ``onnx.ModelProto`` and
``proto().ModelProto`` are one class whichever is imported first.  When onnx is already
imported, its own module is used.

The C++ library (shape inference, operator schemas) is loaded by :func:`cpp` only in the
shape-inference worker, under its own name: an extension module cannot be loaded twice.

Tensors of the plain numeric dtypes are decoded here as ``onnx.numpy_helper.to_array`` does;
any other dtype (bfloat16, float8, int4, strings...) goes to onnx's own code, which imports
onnx (``tests/frontends/onnx/test_onnx_proto.py`` checks both give the same arrays and errors).

>>> m = proto().ModelProto()
>>> m.ir_version = 10
>>> proto().ModelProto.FromString(m.SerializeToString()).ir_version
10
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["attribute_value", "cpp", "np_dtype", "proto", "to_array"]

_PRIVATE_NAME = "deconvlint.frontends._onnx_ml_pb2"


def _onnx_dir() -> Path | None:
    spec = importlib.util.find_spec("onnx")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def proto() -> ModuleType:
    """onnx's ``onnx_ml_pb2``: ``ModelProto``, ``TensorProto``, ``AttributeProto``..."""
    if "onnx" in sys.modules or _PRIVATE_NAME in sys.modules:
        return _imported_proto()
    folder = _onnx_dir()
    spec = None if folder is None else importlib.util.spec_from_file_location(
        _PRIVATE_NAME, folder / "onnx_ml_pb2.py"
    )  # fmt: skip
    if spec is None or spec.loader is None:
        return _imported_proto()
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # a layout this onnx does not have: its package init does it all
        return _imported_proto()
    sys.modules[_PRIVATE_NAME] = module
    return module


def _imported_proto() -> ModuleType:
    if _PRIVATE_NAME in sys.modules:
        return sys.modules[_PRIVATE_NAME]
    import onnx.onnx_ml_pb2

    return onnx.onnx_ml_pb2


def cpp() -> ModuleType:
    """onnx's C++ library, ``onnx.onnx_cpp2py_export``.  Without onnx imported, it is loaded
    from its file under that name, without the package: call this only in a process that never
    imports onnx afterwards (the shape-inference worker), since the package would then lack the
    attribute ``onnx.onnx_cpp2py_export`` (importing through it still works)."""
    name = "onnx.onnx_cpp2py_export"
    if name in sys.modules:
        return sys.modules[name]
    folder = _onnx_dir()
    if "onnx" not in sys.modules and folder is not None:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"onnx_cpp2py_export{suffix}"
            if path.is_file():
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is not None and spec.loader is not None:
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[name] = module
                    try:
                        spec.loader.exec_module(module)
                    except Exception:
                        del sys.modules[name]
                        break
                    return module
    import onnx.onnx_cpp2py_export

    return onnx.onnx_cpp2py_export


# TensorProto.DataType -> (numpy dtype, the field its values are stored in when not raw,
# that field's numpy dtype); the dtypes numpy has natively, no others
_DTYPES: dict[int, tuple[np.dtype, str, np.dtype]] = {
    1: (np.dtype("float32"), "float_data", np.dtype("float32")),
    2: (np.dtype("uint8"), "int32_data", np.dtype("int32")),
    3: (np.dtype("int8"), "int32_data", np.dtype("int32")),
    4: (np.dtype("uint16"), "int32_data", np.dtype("int32")),
    5: (np.dtype("int16"), "int32_data", np.dtype("int32")),
    6: (np.dtype("int32"), "int32_data", np.dtype("int32")),
    7: (np.dtype("int64"), "int64_data", np.dtype("int64")),
    9: (np.dtype("bool"), "int32_data", np.dtype("int32")),
    10: (np.dtype("float16"), "int32_data", np.dtype("int32")),
    11: (np.dtype("float64"), "double_data", np.dtype("float64")),
    12: (np.dtype("uint32"), "uint64_data", np.dtype("uint64")),
    13: (np.dtype("uint64"), "uint64_data", np.dtype("uint64")),
}
_SIXTEEN_BITS = frozenset({4, 5, 10})  # stored as int32_data bit patterns
_EXTERNAL = 1  # TensorProto.EXTERNAL


def np_dtype(data_type: int) -> np.dtype:
    """``onnx.helper.tensor_dtype_to_np_dtype``."""
    if data_type in _DTYPES:
        return _DTYPES[data_type][0]
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(data_type)


def to_array(tensor: Any) -> np.ndarray:
    """``onnx.numpy_helper.to_array`` (same array, same errors) of a tensor held in the model.

    >>> t = proto().TensorProto(data_type=7, dims=[2], int64_data=[3, 4])
    >>> to_array(t).tolist()
    [3, 4]
    """
    entry = _DTYPES.get(tensor.data_type)
    external = tensor.HasField("data_location") and tensor.data_location == _EXTERNAL
    if entry is None or external or tensor.HasField("segment") or sys.byteorder != "little":
        from onnx import numpy_helper

        return numpy_helper.to_array(tensor)
    dtype, field, storage = entry
    if tensor.HasField("raw_data"):
        return np.frombuffer(tensor.raw_data, dtype=dtype).reshape(tensor.dims)
    if tensor.data_type in _SIXTEEN_BITS:
        bits = np.array(tensor.int32_data, dtype=np.int32).view(np.uint32).astype(np.uint16)
        return bits.reshape(tensor.dims).view(dtype)
    if tensor.data_type == 9:  # bool
        bits = np.array(tensor.int32_data, dtype=np.int32).view(np.uint32).astype(np.uint8)
        return bits.view(dtype).reshape(tensor.dims)
    return np.asarray(getattr(tensor, field), dtype=storage).astype(dtype).reshape(tensor.dims)


# AttributeProto.AttributeType -> the field holding its value (repeated ones as lists)
_ATTRIBUTE_FIELDS = {1: "f", 2: "i", 3: "s", 4: "t", 5: "g", 11: "sparse_tensor", 13: "tp"}
_REPEATED_FIELDS = {6: "floats", 7: "ints", 8: "strings", 9: "tensors", 10: "graphs",
                    12: "sparse_tensors", 14: "type_protos"}  # fmt: skip


def attribute_value(attr: Any) -> Any:
    """``onnx.helper.get_attribute_value``."""
    if attr.ref_attr_name:
        raise ValueError(f"Cannot get value of reference attribute: {attr}")
    if attr.type in _ATTRIBUTE_FIELDS:
        return getattr(attr, _ATTRIBUTE_FIELDS[attr.type])
    if attr.type in _REPEATED_FIELDS:
        return list(getattr(attr, _REPEATED_FIELDS[attr.type]))
    if attr.type == 0:
        return None
    raise ValueError(f"Unsupported ONNX attribute: {attr}")
