"""The same model as a `.keras` archive, a legacy `.h5` and an ONNX file: `deconvlint FILE` side
by side, and `--extend-select DL007` (the weights read with h5py).

The model is ``examples/dcgan_generator.keras`` (TensorFlow's DCGAN generator, fewer filters);
Keras on its torch backend writes the `.h5` and exports the ONNX file once, into a temporary
folder.  Each command runs N times, alternating, after one warm-up run each; medians printed.

Usage: KERAS_BACKEND=torch python benchmarks/keras_files.py [-n N] [--pythonpath DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "dcgan_generator.keras"

_EXPORT = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "torch")
import keras, numpy as np
model = keras.saving.load_model(sys.argv[1])
model(np.zeros((1, 16), "float32"))  # export needs a model that has been called
model.save(sys.argv[2])
model.export(sys.argv[3], format="onnx")
"""


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=15)
    parser.add_argument("--pythonpath", default=str(ROOT), help="the checkout to run")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="deconvlint-keras-bench-"))
    h5, onnx = folder / "dcgan_generator.h5", folder / "dcgan_generator.onnx"
    subprocess.run(
        [sys.executable, "-c", _EXPORT, str(EXAMPLE), str(h5), str(onnx)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": args.pythonpath}
    run = [sys.executable, "-m", "deconvlint", "-q"]
    commands = {
        "deconvlint x.onnx": [*run, str(onnx)],
        "deconvlint x.keras": [*run, str(EXAMPLE)],
        "deconvlint x.h5": [*run, str(h5)],
        "x.onnx + DL007": [*run, "--extend-select", "DL007", str(onnx)],
        "x.keras + DL007": [*run, "--extend-select", "DL007", str(EXAMPLE)],
        "x.h5 + DL007": [*run, "--extend-select", "DL007", str(h5)],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # warm the file cache
        wall(cmd, env)
    for _ in range(args.n):
        for name, cmd in commands.items():
            times[name].append(wall(cmd, env))
    base = statistics.median(times["deconvlint x.onnx"])
    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'/ onnx':>7}  runs")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"{name:<22} {m:9.3f} {min(t):7.3f} {m / base:7.2f}  {args.n}")


if __name__ == "__main__":
    main()
