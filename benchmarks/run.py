"""Performance targets of issue 17, side by side in one run: medians of N runs and ratios.

1. startup:   `deconvlint small.onnx` vs `python -c "import onnx"`            (wall <= 0.6x)
2. big:       `deconvlint big.onnx` vs `python -c "import onnx; onnx.load(big)"`
              (wall <= 0.15x, peak RSS <= 0.05x)
3. source:    `deconvlint gen.py` (a clean 6-line source file, lint only) vs
              `python -c "import numpy"`                                       (wall <= 1.5x)
4. catalogue: which of PyYAML, onnx, ml_dtypes and libcst a `deconvlint small.onnx` and a
              `deconvlint gen.py` run import (none of them), and what `import yaml` costs
5. jobs:      `deconvlint FOLDER -j 2` vs `-j 1` on 1000 small models: the speed-up on the work
              beyond a one-file run, (t1 - t_one) / (t2 - t_one), against the speed-up that two
              busy loops get from two processes, measured in turn in the same rounds
              (>= 0.8x of it)
Also, with --only: flat (a 3-D decoder at 512^3 vs 16^3, issue 7) and torch
(benchmarks/torch_check_vs_fx.py, its own process).

Inputs are generated into a temporary folder (the big model, ~1.13 GB, is kept in --work between
runs if given).  Commands run alternately, after one warm-up each (file cache, .pyc files);
peak RSS is the child's ru_maxrss from wait4.  On a shared machine the times move with the
other load: the ratios of one run are what to read, not the absolute times.
Usage: python benchmarks/run.py [-n N] [--work DIR] [--only startup,big,source,catalogue,jobs]
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
sys.path.insert(0, str(ROOT))

from many_models import _spin  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
TARGETS = "startup,big,source,catalogue,jobs"

GEN_PY = """import torch.nn as nn


class Generator(nn.Module):
    def __init__(self):
        self.up = nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1)
"""


def make_inputs(code: str) -> None:
    """Run ``code`` in a child with the benchmarks and the repository on its path: a child
    forked from this process starts with this process's peak RSS (wait4 reports it), so this
    process never imports onnx or holds a model."""
    path = os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT), ENV.get("PYTHONPATH", "")])
    code = f"from pathlib import Path\n{code}"
    subprocess.run([sys.executable, "-c", code], env={**ENV, "PYTHONPATH": path}, check=True)


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


def busy_loops(processes: int, n: int = 3_000_000) -> float:
    """Wall seconds of two busy loops in ``processes`` processes (the control of target 5)."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(_spin, [1000] * processes)  # the workers are up before timing
        start = time.perf_counter()
        pool.map(_spin, [n] * 2, chunksize=1)
        return time.perf_counter() - start


def compare(title: str, commands: dict[str, list[str]], n: int) -> list[tuple]:
    for cmd in commands.values():
        run(cmd)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for _ in range(n):
        for name, cmd in commands.items():
            samples[name].append(run(cmd))
    return [(title, name, *_medians(values)) for name, values in samples.items()]


def _medians(values: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    return tuple(statistics.median(v[i] for v in values) for i in range(3))  # type: ignore[return-value]


def ratio_line(label: str, got: list[tuple], wall: float, rss_target: float | None = None) -> str:
    """The second command of ``got`` over the first: wall (against ``wall``), RSS, CPU."""
    (_, _, wall0, rss0, cpu0), (_, _, wall1, rss1, cpu1) = got
    line = f"{label:<11} wall {wall1 / wall0:.3f}x (<= {wall})"
    if rss_target is not None:
        line += f"   peak RSS {rss1 / rss0:.3f}x (<= {rss_target})"
    return line + f"   cpu {cpu1 / cpu0:.3f}x"


def deconvlint(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "deconvlint", *map(os.fspath, args)]


def imported_by(args: list[str], modules: list[str]) -> list[str]:
    """Which of ``modules`` a CLI run with ``args`` imports (run in-process in a child)."""
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['deconvlint', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('deconvlint', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('imported:' + ','.join(m for m in {modules!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV)
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("imported:")]
    return [m for m in line.removeprefix("imported:").split(",") if m]


def jobs_target(work: Path, n: int) -> tuple[list[tuple], str]:
    folder = work / "many"
    if not (folder / "model_999.onnx").exists():
        make_inputs(
            f"from tests.support.onnx_factory import write_many_models; "
            f"write_many_models({os.fspath(folder)!r}, 1000)"
        )
    one = folder / "model_000.onnx"
    commands = {
        "one file": deconvlint(one, "--format", "json"),
        "-j 1": deconvlint(folder, "--format", "json", "-j", "1"),
        "-j 2": deconvlint(folder, "--format", "json", "-j", "2"),
    }
    for cmd in commands.values():
        run(cmd)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    loops: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(n):
        for name, cmd in commands.items():
            samples[name].append(run(cmd))
        for processes in (1, 2):
            loops[processes].append(busy_loops(processes))
    rows = [("5 jobs", name, *_medians(values)) for name, values in samples.items()]
    rows += [("5 jobs", f"loops, {p} proc", statistics.median(loops[p]), 0.0, 0.0) for p in (1, 2)]
    one_s, j1, j2 = (statistics.median(v[0] for v in samples[k]) for k in commands)
    speedup = (j1 - one_s) / (j2 - one_s)
    control = statistics.median(loops[1]) / statistics.median(loops[2])
    ratio = (
        f"5 jobs      work beyond one file: -j 1 {j1 - one_s:.3f} s, -j 2 {j2 - one_s:.3f} s, "
        f"speed-up {speedup:.2f}x; busy loops {control:.2f}x; "
        f"{speedup / control:.2f} of the control (>= 0.8)"
    )
    return rows, ratio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=7)
    parser.add_argument("--work", type=Path, help="keep generated inputs here")
    parser.add_argument("--only", default=TARGETS)
    args = parser.parse_args()
    targets = args.only.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="deconvlint-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # no configuration file, and no checkout's deconvlint before the installed one
    small = work / "small.onnx"
    make_inputs(
        f"from make_models import write_volume; write_volume(Path({os.fspath(small)!r}), 16)"
    )
    gen = work / "gen.py"
    gen.write_text(GEN_PY)
    rows: list[tuple] = []
    ratios: list[str] = []
    if "startup" in targets:
        importing = [sys.executable, "-c", "import onnx"]
        got = compare(
            "1 startup", {"import onnx": importing, "deconvlint": deconvlint(small)}, args.n
        )
        rows += got
        ratios.append(ratio_line("1 startup", got, 0.6))
    if "big" in targets:
        big = work / "big.onnx"
        if not big.exists():  # in a child: this process stays small (see make_inputs)
            make_inputs(f"from make_models import write_big; write_big(Path({os.fspath(big)!r}))")
        load = [sys.executable, "-c", f"import onnx; onnx.load({os.fspath(big)!r})"]
        got = compare("2 big", {"onnx.load": load, "deconvlint": deconvlint(big)}, args.n)
        rows += got
        ratios.append(ratio_line("2 big", got, 0.15, rss_target=0.05))
    if "source" in targets:
        numpy = [sys.executable, "-c", "import numpy"]
        got = compare("3 source", {"import numpy": numpy, "deconvlint": deconvlint(gen)}, args.n)
        rows += got
        ratios.append(ratio_line("3 source", got, 1.5))
    if "catalogue" in targets:
        heavy = ["yaml", "onnx", "ml_dtypes", "libcst"]
        got = compare(
            "4 catalogue",
            {"python": [sys.executable, "-c", "pass"], "import yaml": [sys.executable, "-c", "import yaml"]},
            args.n,
        )  # fmt: skip
        rows += got
        on_onnx = imported_by([os.fspath(small)], heavy) or ["none"]
        on_source = imported_by([os.fspath(gen)], heavy) or ["none"]
        ratios.append(
            f"4 catalogue of {heavy}, `deconvlint small.onnx` imports {', '.join(on_onnx)}, "
            f"`deconvlint gen.py` {', '.join(on_source)}; "
            f"import yaml costs {got[1][2] - got[0][2]:.3f} s"
        )
    if "jobs" in targets:
        got, ratio = jobs_target(work, args.n)
        rows += got
        ratios.append(ratio)
    if "flat" in targets:
        low, high = work / "v16.onnx", work / "v512.onnx"
        for path, size in ((low, 16), (high, 512)):
            make_inputs(
                f"from make_models import write_volume; write_volume(Path({str(path)!r}), {size})"
            )
        got = compare("flat", {"16^3": deconvlint(low), "512^3": deconvlint(high)}, args.n)
        rows += got
        ratios.append(f"flat        wall {got[1][2] / got[0][2]:.2f}x (~1.0)")
    print(_environment())
    print(f"{'target':<12} {'command':<16} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12}")
    for title, name, wall, rss, cpu in rows:
        print(f"{title:<12} {name:<16} {wall:8.3f} {cpu:8.3f} {rss:12.1f}")
    print(
        f"(medians of {args.n} runs; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})"
    )
    print()
    print("\n".join(ratios))
    if "torch" in targets:
        print()
        script = ROOT / "benchmarks" / "torch_check_vs_fx.py"
        subprocess.run([sys.executable, os.fspath(script), "-n", str(args.n)], env=ENV, check=True)


def _environment() -> str:
    from importlib.metadata import version

    names = ("onnx", "ml_dtypes", "numpy", "protobuf")
    versions = ", ".join(f"{name} {version(name)}" for name in names)
    return f"Python {sys.version.split()[0]}, {versions}"


if __name__ == "__main__":
    main()
