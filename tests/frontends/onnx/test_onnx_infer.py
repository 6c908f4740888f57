"""The shape-inference worker: one process for many models, replaced when it dies or hangs."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from onnx import helper

from deconvlint.errors import LoadError
from deconvlint.frontends.onnx import reader as frontend
from deconvlint.frontends.onnx.infer import WORKER
from deconvlint.frontends.onnx.reader import graph_from_model
from tests.support.onnx_factory import make_model, tensor, value_info


def relu_model() -> object:
    node = helper.make_node("Relu", ["x"], ["y"], name="act")
    return make_model([node], [value_info("x", [1, 1, 4])], [value_info("y", None)])


def test_one_worker_serves_many_models() -> None:
    graph_from_model(relu_model())
    pid = WORKER._pid
    for _ in range(3):
        assert graph_from_model(relu_model()).shapes["y"] == (1, 1, 4)
    assert WORKER._pid == pid is not None


def test_a_crashed_worker_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frontend, "_infer", lambda work: os.abort())
    graph = graph_from_model(relu_model())
    assert graph.notes == ["shape inference failed: onnx crashed on this model (signal 6)"]
    monkeypatch.undo()
    graph = graph_from_model(relu_model())
    assert not graph.notes and graph.shapes["y"] == (1, 1, 4)


def test_a_hanging_inference_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frontend, "_infer", lambda work: time.sleep(60))
    monkeypatch.setattr(frontend, "INFERENCE_TIMEOUT", 0.5)
    graph = graph_from_model(relu_model())
    assert graph.notes == ["shape inference failed: timed out after 0.5 s"]
    assert graph.shapes == {"x": (1, 1, 4)}


def test_a_worker_inherited_through_fork_is_not_reused() -> None:
    graph_from_model(relu_model())
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child checks a model: it must start its own worker
        ok = graph_from_model(relu_model()).shapes.get("y") == (1, 1, 4)
        ok = ok and WORKER._owner == os.getpid()
        os.write(write_end, b"1" if ok else b"0")
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert graph_from_model(relu_model()).shapes["y"] == (1, 1, 4)  # ours still works


def test_index_tensor_claiming_terabytes_is_refused_before_inference() -> None:
    # found by fuzzing: Gather with indices of dims [2**40] but two values kept onnx's data
    # propagation busy for over 2 minutes
    idx = tensor("idx", [2, 3], np.int64)
    idx.dims[0] = 2**40
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "idx"], ["hw"], name="gather"),
        helper.make_node("Reshape", ["x", "hw"], ["y"], name="reshape"),
    ]
    model = make_model(nodes, [value_info("x", [1, 4, 6, 6])], [value_info("y", None)], [idx])
    with pytest.raises(LoadError, match=r"tensor 'idx': dims \[1099511627776\] claim"):
        graph_from_model(model)


def test_a_weight_without_data_is_still_read_by_its_dims() -> None:
    from onnx import TensorProto

    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 2, 3, 3])  # no data at all
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])
    model = make_model([node], [value_info("x", [1, 2, 4, 4])], [value_info("y", None)], [w])
    assert graph_from_model(model).nodes[0].window[0].kernel == 3
    model.graph.initializer[0].dims[2] = 2**40  # more than any file can hold
    with pytest.raises(LoadError, match="claim"):
        graph_from_model(model)


def test_a_prestarted_worker_serves_the_first_model() -> None:
    WORKER.stop()
    frontend.prestart_inference()
    pid = WORKER._pid
    assert pid is not None
    frontend.prestart_inference()  # already running for this process: kept
    assert WORKER._pid == pid
    assert graph_from_model(relu_model()).shapes["y"] == (1, 1, 4)
    assert WORKER._pid == pid


def test_a_failed_warm_up_raises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from deconvlint.frontends.onnx import proto as onnx_proto
    from deconvlint.frontends.onnx.infer import warm_up

    def broken(*args: object) -> None:
        raise RuntimeError("no schemas")

    monkeypatch.setattr(onnx_proto, "cpp", broken)
    warm_up()  # says nothing: the worker still starts, and its first request reports
