"""Start-up: `deconvlint small.onnx` against `python -c "import onnx"`, side by side.

Runs each command N times, alternating, and prints the median wall times and their ratio.
Usage: python benchmarks/startup.py [MODEL] [-n N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "model", nargs="?", default=str(ROOT / "examples" / "cyclegan_decoder.onnx")
    )
    parser.add_argument("-n", type=int, default=15)
    args = parser.parse_args()
    commands = {
        "import onnx": [sys.executable, "-c", "import onnx"],
        "deconvlint model": [sys.executable, "-m", "deconvlint", args.model],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # warm the file cache
        wall(cmd)
    for _ in range(args.n):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"{'command':<20} {'median s':>9}  runs")
    for name, m in medians.items():
        print(f"{name:<20} {m:9.3f}  {args.n}")
    ratio = medians["deconvlint model"] / medians["import onnx"]
    print(f"ratio deconvlint / import onnx: {ratio:.2f}")


if __name__ == "__main__":
    main()
