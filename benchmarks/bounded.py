"""Bounded analysis (issue 14): the small ONNX files that used to take deconvlint down.

Each row is a valid ONNX file of a few KB, checked by the CLI in a subprocess under a time and
an address-space limit, so a row that explodes is killed instead of taking the machine down.
For each row: wall time (median of ``--repeat`` runs), peak RSS of the child, output bytes, exit
code and, when the run did not finish with findings, its last stderr line.  Then the chains of N
and 2N layers side by side: their time ratio should stay about 2 (the cost is linear in depth).

Usage: python benchmarks/bounded.py [--repeat 3] [--timeout 60] [--memory-gb 8]
       [--python PY] [--pythonpath DIR] [--rows ROW,ROW]
``--pythonpath`` runs another checkout (``python -m deconvlint`` from DIR), e.g. the old main.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, save

OPSET = 19


def _model(nodes, inits, x_shape, out, name="bounded"):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _weight(name, shape, seed=0):
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, shape, values.ravel().tolist())


def conv_transpose_chain(layers: int, rank: int = 2, k: int = 3, s: int = 2, p: int = 1):
    """``layers`` stacked ConvTranspose (k, s, p, op=s-1), one channel, weights of ones."""
    nodes, inits, value = [], [], "x"
    kernel = [1, 1] + [k] * rank
    inits.append(helper.make_tensor("w", TensorProto.FLOAT, kernel, [1.0] * k**rank))
    for i in range(layers):
        out = f"h{i}"
        nodes.append(
            helper.make_node(
                "ConvTranspose", [value, "w"], [out], name=f"up{i}",
                kernel_shape=[k] * rank, strides=[s] * rank, pads=[p] * (2 * rank),
                output_padding=[s - 1] * rank,
            )
        )  # fmt: skip
        value = out
    return _model(nodes, inits, [1, 1] + [4] * rank, value)


def ladder(levels: int):
    """Each level: (ConvT s2 -> ConvT s3) and (ConvT s3 -> ConvT s2) joined by Concat."""
    nodes, inits, value = [], [], "x"
    inits.append(helper.make_tensor("w2", TensorProto.FLOAT, [1, 1, 3, 3], [1.0] * 9))
    inits.append(helper.make_tensor("w3", TensorProto.FLOAT, [1, 1, 4, 4], [1.0] * 16))

    def up(src, dst, name, stride):
        w, k = ("w2", 3) if stride == 2 else ("w3", 4)
        return helper.make_node(
            "ConvTranspose", [src, w], [dst], name=name, kernel_shape=[k, k],
            strides=[stride, stride], pads=[1, 1, 1, 1],
            output_padding=[1, 1] if stride == 2 else [0, 0],
        )  # fmt: skip

    for i in range(levels):
        nodes += [
            up(value, f"a{i}", f"l{i}a2", 2),
            up(f"a{i}", f"b{i}", f"l{i}a3", 3),
            up(value, f"c{i}", f"l{i}b3", 3),
            up(f"c{i}", f"d{i}", f"l{i}b2", 2),
        ]
        cat = f"j{i}"
        nodes.append(helper.make_node("Concat", [f"b{i}", f"d{i}"], [cat], name=f"cat{i}", axis=1))
        nodes.append(
            helper.make_node("Conv", [cat, "wm"], [f"m{i}"], name=f"mix{i}", kernel_shape=[1, 1])
        )
        value = f"m{i}"
    inits.append(helper.make_tensor("wm", TensorProto.FLOAT, [1, 2, 1, 1], [1.0, 1.0]))
    return _model(nodes, inits, [1, 1, 2, 2], value)


def sub_pixel_then_relus(relus: int):
    """Conv 4->16 + DepthToSpace(4) (random weights: a period-4 pattern) then ``relus`` Relus."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("DepthToSpace", ["c"], ["h0"], name="shuffle", blocksize=2),
    ]  # fmt: skip
    for i in range(relus):
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"h{i + 1}"], name=f"relu{i}"))
    return _model(nodes, [_weight("w", [16, 4, 3, 3])], [1, 4, 8, 8], f"h{relus}")


def stride1_chain(layers: int, k: int = 1024):
    """``layers`` ConvTranspose1d of stride 1 and kernel ``k`` (the coverage grows as k**layers)."""
    nodes, value = [], "x"
    for i in range(layers):
        nodes.append(
            helper.make_node("ConvTranspose", [value, "w"], [f"h{i}"], name=f"ct{i}",
                             kernel_shape=[k], strides=[1])
        )  # fmt: skip
        value = f"h{i}"
    inits = [helper.make_tensor("w", TensorProto.FLOAT, [1, 1, k], [1.0] * k)]
    return _model(nodes, inits, [1, 1, 8], value)


# (row name, model factory, extra CLI arguments)
ROWS = [
    ("ct2d x16", lambda: conv_transpose_chain(16), ["--format", "json"]),
    ("ct2d x18", lambda: conv_transpose_chain(18), ["--format", "json"]),
    ("ct2d x20", lambda: conv_transpose_chain(20), ["--format", "json"]),
    ("ct2d x30", lambda: conv_transpose_chain(30), ["--format", "json"]),
    ("ct2d x40", lambda: conv_transpose_chain(40), ["--format", "json"]),
    ("ct1d s65536 x2", lambda: conv_transpose_chain(2, rank=1, k=3, s=65536, p=0), []),
    ("ladder 8", lambda: ladder(8), ["--format", "json"]),
    ("ladder 12", lambda: ladder(12), ["--format", "json"]),
    ("html ct2d s4096", lambda: conv_transpose_chain(1, k=3, s=4096, p=0), ["--format", "html"]),
    ("html ct2d s65536", lambda: conv_transpose_chain(1, k=3, s=65536, p=0), ["--format", "html"]),
    ("sub-pixel + 1000 relu", lambda: sub_pixel_then_relus(1000), ["--format", "json"]),
    ("ct1d k1024 s1 x110", lambda: stride1_chain(110), ["--format", "json"]),
    ("sub-pixel + 100000 relu", lambda: sub_pixel_then_relus(100_000), ["--format", "json"]),
]
# chains timed side by side: N and 2N layers
SCALING = [
    ("ct2d", lambda n: conv_transpose_chain(n)),
    ("ct1d k1024 s1", lambda n: stride1_chain(n)),
    ("ladder", lambda n: ladder(n)),
    ("sub-pixel + relu", lambda n: sub_pixel_then_relus(n)),
]
SCALING_N = {"ct2d": [40, 80, 160, 320], "ct1d k1024 s1": [110, 220, 440], "ladder": [12, 24, 48],
             "sub-pixel + relu": [10_000, 20_000, 40_000]}  # fmt: skip


def run_one(cmd, env, timeout, memory_bytes, out_path):
    """(seconds, peak RSS in MB, output bytes, exit code, last stderr line, stderr lines, CPU
    seconds).  CPU time is the number to compare on a busy machine; wall time is the user's."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    with open(out_path, "wb") as out, tempfile.TemporaryFile() as err_file:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err_file,
            env=env,
            preexec_fn=limit,
            cwd=os.path.dirname(out_path),
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        seconds = time.perf_counter() - start
        killed = not timer.is_alive()
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read().decode(errors="replace").strip()
    code = "timeout" if killed else proc.returncode
    if killed:
        err = f"killed after {timeout:g} s"
    last = err.splitlines()[-1] if err else ""
    lines = err.count("\n") + 1 if err else 0
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, usage.ru_maxrss / 1024, os.path.getsize(out_path), code, last, lines, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--memory-gb", type=float, default=8)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--pythonpath", default=None)
    ap.add_argument("--rows", default=None, help="comma-separated row names (default: all)")
    ap.add_argument("--no-scaling", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    memory = int(args.memory_gb * 2**30)
    wanted = set(args.rows.split(",")) if args.rows else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(
            f"{'row':24} {'size':>7} {'wall s':>7} {'CPU s':>6} {'RSS MB':>7} {'output':>11} "
            "exit  stderr"
        )
        for name, factory, extra in ROWS:
            if wanted and name not in wanted:
                continue
            path = folder / (name.replace(" ", "_") + ".onnx")
            save(factory(), path)
            cmd = [args.python, "-m", "deconvlint", str(path), *extra]
            runs = [
                run_one(cmd, env, args.timeout, memory, folder / "out")
                for _ in range(1 if name.startswith("ct2d x3") or "x40" in name else args.repeat)
            ]
            seconds = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[6] for r in runs)
            _, rss, size, code, last, lines, _ = runs[-1]
            note = last[:90] if code not in (0, 1) else (f"{lines} stderr lines" if lines else "")
            print(
                f"{name:24} {path.stat().st_size:>7} {seconds:>7.2f} {cpu:>6.2f} {rss:>7.0f} "
                f"{size:>11,} {code!s:>4}  {note}",
                flush=True,
            )
        if args.no_scaling:
            return
        print("\nN vs 2N: CPU seconds of deconvlint.check alone (median), ratio to the previous")
        for name, factory in SCALING:
            previous = None
            for n in SCALING_N[name]:
                path = folder / f"scale_{n}.onnx"
                save(factory(n), path)
                # the check alone, warm (imports and first-use caches paid by a first check)
                code = (
                    "import sys, time, deconvlint; deconvlint.check(sys.argv[1]); "
                    "t = time.process_time(); deconvlint.check(sys.argv[1]); "
                    "print(time.process_time() - t)"
                )
                cmd = [args.python, "-c", code, str(path)]
                runs, times = [], []
                for _ in range(args.repeat):
                    runs.append(run_one(cmd, env, args.timeout, memory, folder / "out"))
                    times.append(float((folder / "out").read_text() or "nan"))
                seconds = statistics.median(times)
                wall = statistics.median(r[0] for r in runs)
                ratio = f"{seconds / previous:.2f}" if previous else "-"
                print(
                    f"{name:16} N={n:<7} CPU {seconds:7.3f} s (process wall {wall:6.2f} s)  ratio {ratio}"
                    f"  exit {runs[-1][3]}",
                    flush=True,
                )
                previous = seconds


if __name__ == "__main__":
    main()
