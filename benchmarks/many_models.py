"""``deconvlint FOLDER -j 1`` against ``-j 2`` on a folder of generated ONNX models.

Writes N small decoders (``tests/support/onnx_factory.write_many_models``: one to three upsamplers,
clean and flagged) to a temporary folder, then runs ``python -m deconvlint FOLDER --format json``
with each job count R times, alternating, and prints the median wall times, their ratio, and
whether the outputs are identical (they must be: order is the input order whatever the jobs),
with a control: how much faster plain busy loops run in that many processes on this machine now.
Usage: python benchmarks/many_models.py [-n MODELS] [-r REPEATS] [-j JOBS ...]
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
sys.path.insert(0, str(ROOT))


def timed(cmd: list[str]) -> tuple[float, bytes]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed, done.stdout


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def machine_speedup(jobs: int, n: int = 5_000_000) -> float:
    """A control: ``jobs`` busy loops one after another, over the same loops in ``jobs``
    processes.  Near ``jobs`` on an idle machine; near 1 when other work takes the CPUs, and
    then no ``-j`` can be faster either."""
    import multiprocessing

    start = time.perf_counter()
    for _ in range(jobs):
        _spin(n)
    serial = time.perf_counter() - start
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        pool.map(_spin, [1000] * jobs)  # start the workers before timing
        start = time.perf_counter()
        pool.map(_spin, [n] * jobs)
        parallel = time.perf_counter() - start
    return serial / parallel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200, help="number of models")
    parser.add_argument("-r", type=int, default=3, help="runs per job count")
    parser.add_argument("-j", type=int, nargs="+", default=[1, 2], help="job counts to compare")
    args = parser.parse_args()

    from tests.support.onnx_factory import write_many_models

    load_before = os.getloadavg()
    control_before = machine_speedup(max(args.j))
    with tempfile.TemporaryDirectory() as folder:
        write_many_models(folder, args.n)
        times: dict[int, list[float]] = {j: [] for j in args.j}
        outputs: dict[int, set[bytes]] = {j: set() for j in args.j}
        for _ in range(args.r):
            for jobs in args.j:
                cmd = [sys.executable, "-m", "deconvlint", folder, "--format", "json"]
                elapsed, out = timed([*cmd, "-j", str(jobs)])
                times[jobs].append(elapsed)
                outputs[jobs].add(out)
    medians = {j: statistics.median(t) for j, t in times.items()}
    for jobs in args.j:
        runs = ", ".join(f"{t:.2f}" for t in times[jobs])
        print(f"-j {jobs}: median {medians[jobs]:.2f} s over {args.r} runs ({runs})")
    base = args.j[0]
    for jobs in args.j[1:]:
        print(f"-j {base} / -j {jobs}: {medians[base] / medians[jobs]:.2f}x")
    identical = len(set().union(*outputs.values())) == 1
    print(f"{args.n} models; outputs identical across runs and job counts: {identical}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{cpus} CPUs; 1-minute load average {load_before[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (other work on the machine skews the times)"
    )
    control = f"{control_before:.2f}x before, {machine_speedup(max(args.j)):.2f}x after"
    print(f"control, {max(args.j)} busy loops in {max(args.j)} processes: {control}")


if __name__ == "__main__":
    main()
