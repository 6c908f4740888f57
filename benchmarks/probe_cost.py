"""What --probe costs, against one forward pass of the same model in onnxruntime.

Measures, in-process and after a warm-up, the median of N repeats of:
  forward  one session.run on one input (session already built)
  probe    probe_onnx(...) as the CLI runs it: session build, the 4 probe passes with the
           upsampler outputs as extra outputs, and the FFT measurements
  check    check_path without the probe (the static rules), for scale
Usage: python benchmarks/probe_cost.py [MODEL] [-n N] [--size S]
(--size: build a CycleGAN-style decoder with SxS input instead of reading MODEL)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_time(fn, n: int) -> float:
    fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    import onnx
    import onnxruntime as ort

    from deconvlint.engine import check_path
    from deconvlint.frontends.onnx.reader import graph_from_model
    from deconvlint.probe.onnx import probe_onnx

    parser = argparse.ArgumentParser()
    parser.add_argument(
        "model", nargs="?", default=str(ROOT / "examples" / "cyclegan_decoder.onnx")
    )
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--size", type=int, default=0)
    args = parser.parse_args()
    if args.size:
        from tests.probe import test_probe

        test_probe.SIZE = args.size
        model = test_probe.decoder("cyclegan")
        path = Path("/tmp") / f"probe_cost_{args.size}.onnx"
        onnx.save(model, str(path))
    else:
        path = Path(args.model)
        model = onnx.load(str(path))
    graph = graph_from_model(model)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    feeds = {
        i.name: np.ones([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
        for i in session.get_inputs()
    }
    forward = median_time(lambda: session.run(None, feeds), args.n)
    probe = median_time(lambda: probe_onnx(path, graph), args.n)
    check = median_time(lambda: check_path(path), args.n)
    print(f"model            {path.name}  inputs {[v.shape for v in feeds.values()]}")
    print(f"forward pass     {forward * 1e3:9.2f} ms")
    print(f"probe            {probe * 1e3:9.2f} ms  = {probe / forward:8.1f} x forward")
    print(f"static check     {check * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()
