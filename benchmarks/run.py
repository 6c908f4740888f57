"""Performance benchmarks of issue 7, side by side in one run: medians of N runs and ratios.

1. big:     `deconvlint big.onnx` vs `python -c "import onnx; onnx.load(big)"` (wall, peak RSS)
2. startup: `deconvlint small.onnx` vs `python -c "import onnx"`
3. flat:    `deconvlint` on a 3-D decoder declared at 512^3 vs at 16^3
4. torch:   `deconvlint.check(model)` vs `torch.fx.symbolic_trace(model)` (benchmarks/
            torch_check_vs_fx.py, in its own process)
5. many:    `-j 2` vs `-j 1` on 200 small models: benchmarks/many_models.py, its own script

Inputs are generated into a temporary folder (the big model, ~1.13 GB, is kept in --work between
runs if given).  Commands run alternately, after one warm-up each (file cache, .pyc files);
peak RSS is the child's ru_maxrss from wait4.
Usage: python benchmarks/run.py [-n N] [--work DIR] [--only big,startup,flat,torch]
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_models import write_big, write_volume  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited with {child.returncode}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # ru_maxrss: KB


def compare(title: str, commands: dict[str, list[str]], n: int) -> list[tuple]:
    for cmd in commands.values():
        run(cmd)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for _ in range(n):
        for name, cmd in commands.items():
            samples[name].append(run(cmd))
    rows = []
    for name, values in samples.items():
        wall = statistics.median(v[0] for v in values)
        rss = statistics.median(v[1] for v in values)
        cpu = statistics.median(v[2] for v in values)
        rows.append((title, name, wall, rss, cpu))
    return rows


def deconvlint(path: Path) -> list[str]:
    return [sys.executable, "-m", "deconvlint", os.fspath(path)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=7)
    parser.add_argument("--work", type=Path, help="keep generated inputs here")
    parser.add_argument("--only", default="big,startup,flat,torch")
    args = parser.parse_args()
    targets = args.only.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="deconvlint-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple] = []
    ratios: list[str] = []
    if "big" in targets:
        big = work / "big.onnx"
        if not big.exists():
            write_big(big)
        load = [sys.executable, "-c", f"import onnx; onnx.load({os.fspath(big)!r})"]
        got = compare("1 big", {"onnx.load": load, "deconvlint": deconvlint(big)}, args.n)
        rows += got
        ratios.append(
            f"1 big      wall {got[1][2] / got[0][2]:.2f}x (<= 0.25)   "
            f"peak RSS {got[1][3] / got[0][3]:.3f}x (<= 0.10)   cpu {got[1][4] / got[0][4]:.2f}x"
        )
    if "startup" in targets:
        small = write_volume(work / "small.onnx", 16)
        importing = [sys.executable, "-c", "import onnx"]
        got = compare(
            "2 startup", {"import onnx": importing, "deconvlint": deconvlint(small)}, args.n
        )
        rows += got
        ratios.append(
            f"2 startup  wall {got[1][2] / got[0][2]:.2f}x (<= 1.5)   cpu {got[1][4] / got[0][4]:.2f}x"
        )
    if "flat" in targets:
        low, high = write_volume(work / "v16.onnx", 16), write_volume(work / "v512.onnx", 512)
        got = compare("3 flat", {"16^3": deconvlint(low), "512^3": deconvlint(high)}, args.n)
        rows += got
        ratios.append(
            f"3 flat     wall {got[1][2] / got[0][2]:.2f}x (~1.0)   cpu {got[1][4] / got[0][4]:.2f}x"
        )
    print(f"{'target':<10} {'command':<14} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12}")
    for title, name, wall, rss, cpu in rows:
        print(f"{title:<10} {name:<14} {wall:8.3f} {cpu:8.3f} {rss:12.1f}")
    print(
        f"(medians of {args.n} runs; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})"
    )
    print()
    print("\n".join(ratios))
    if "torch" in targets:
        print()
        script = ROOT / "benchmarks" / "torch_check_vs_fx.py"
        subprocess.run([sys.executable, os.fspath(script), "-n", str(args.n)], env=ENV, check=True)


if __name__ == "__main__":
    main()
