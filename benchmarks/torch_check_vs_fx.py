"""``deconvlint.check`` on a torch model against ``torch.fx.symbolic_trace`` alone, side by side.

The model is the largest of the test zoo (most modules) unless one is named.  ``check(model)``
(the issue's target: trace and read, shapes unknown) and ``check(model, inputs)`` (the graph
also run on the example inputs, for static shapes) are timed against ``symbolic_trace``; each
call runs N times, alternating, in this one process.  The script prints the median wall and
CPU times and the ratios: the cost of the analysis on top of tracing.
Usage: python benchmarks/torch_check_vs_fx.py [MODEL] [-n N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch.fx  # noqa: E402

import deconvlint  # noqa: E402
from deconvlint.config.settings import Settings  # noqa: E402
from tests.support.zoo import ZOO  # noqa: E402


def wall(call: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - start, time.process_time() - cpu


def largest() -> str:
    return max(ZOO, key=lambda name: sum(1 for _ in ZOO[name].model().modules()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", choices=sorted(ZOO), help="default: the largest")
    parser.add_argument("-n", type=int, default=5)
    args = parser.parse_args()
    name = args.model or largest()
    entry = ZOO[name]
    model, inputs = entry.model(), entry.inputs()
    report = deconvlint.check(model, inputs, config=Settings())  # also warms both paths
    deconvlint.check(model, config=Settings())
    torch.fx.symbolic_trace(model)
    calls = {
        "deconvlint.check(model)": lambda: deconvlint.check(model, config=Settings()),
        "check(model, inputs)": lambda: deconvlint.check(model, inputs, config=Settings()),
        "torch.fx.symbolic_trace": lambda: torch.fx.symbolic_trace(model),
    }
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in calls}
    for _ in range(args.n):
        for label, call in calls.items():
            times[label].append(wall(call))
    modules = sum(1 for _ in model.modules())
    print(f"model: {name} ({modules} modules, tracer {report.frontend}, {args.n} runs each)")
    medians = {label: statistics.median(w for w, _ in t) for label, t in times.items()}
    cpus = {label: statistics.median(c for _, c in t) for label, t in times.items()}
    for label, median in medians.items():
        print(f"{label:<25} median {median * 1000:8.1f} ms wall {cpus[label] * 1000:8.1f} ms cpu")
    base = "torch.fx.symbolic_trace"
    for label in ("deconvlint.check(model)", "check(model, inputs)"):
        ratio = medians[label] / medians[base]
        cpu_ratio = cpus[label] / cpus[base]
        print(f"ratio {label} / symbolic_trace: {ratio:.2f} wall, {cpu_ratio:.2f} cpu (<= 1.5)")


if __name__ == "__main__":
    main()
