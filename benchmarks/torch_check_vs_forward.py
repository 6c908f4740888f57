"""``deconvlint.check(model, example_inputs)`` against one forward pass of the same model.

The target: a check within max(0.3 s, 5 x one forward pass).  For every model of the test zoo
(``tests/support/zoo.py``), and for the real library models below when their library is
installed (those of ``real_library_models.py``: MONAI, asteroid, speechbrain, basicsr,
diffusers, each ``pip install --no-deps``), the
script times one forward pass (eval mode, ``no_grad``, one intra-op thread as the check runs
its forward: on small inputs and a busy machine, two threads make the forward several times
slower and the budget looser) and one check, alternating, N times each
in this one process, and prints the medians, their ratio, whether the check is within the
budget, and the reader that was used.  Run it on two checkouts to compare before and after.

Usage: python benchmarks/torch_check_vs_forward.py [-n N] [--zoo-only] [MODEL ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import deconvlint  # noqa: E402
from deconvlint.config.settings import Settings  # noqa: E402
from tests.support.zoo import ZOO  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from real_library_models import library_models  # noqa: E402

Builder = Callable[[], tuple[Any, tuple[Any, ...]]]


def _zoo(name: str) -> Builder:
    return lambda: (ZOO[name].model(), ZOO[name].inputs())


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(build: Builder, runs: int) -> tuple[float, float, str, int]:
    """(forward s, check s, reader, findings): medians over ``runs`` alternating calls."""
    model, inputs = build()
    model.eval()

    def forward() -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the check runs it: on a busy box, threads cost more
        try:
            with torch.no_grad():
                model(*inputs)
        finally:
            torch.set_num_threads(threads)

    def check() -> Any:
        return deconvlint.check(model, inputs, config=Settings())

    report = check()  # warm both
    forward()
    forwards, checks = [], []
    for _ in range(runs):
        forwards.append(timed(forward))
        checks.append(timed(check))
    return (
        statistics.median(forwards),
        statistics.median(checks),
        report.frontend,
        len(report.findings),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", help="default: the zoo and the library models")
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--zoo-only", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    models = {name: _zoo(name) for name in ZOO}
    if not args.zoo_only:
        models |= library_models()
    if args.models:
        models = {name: models[name] for name in args.models}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.n} runs each")
    header = f"{'model':<26} {'forward ms':>10} {'check ms':>9} {'ratio':>6} {'budget':>6} reader"
    print(header)
    print("-" * len(header))
    over = 0
    for name, build in models.items():
        try:
            forward, check, reader, findings = measure(build, args.n)
        except Exception as exc:
            print(f"{name:<26} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:80]}")
            continue
        budget = max(0.3, 5 * forward)
        within = check <= budget
        over += not within
        print(
            f"{name:<26} {forward * 1000:10.1f} {check * 1000:9.1f} {check / forward:6.1f} "
            f"{'ok' if within else 'OVER':>6} {reader} ({findings} findings)"
        )
    print(f"over max(0.3 s, 5 x forward): {over} of {len(models)}")


if __name__ == "__main__":
    main()
