"""``--plot DIR``: one PNG per finding, the interior pattern over a few periods with its values,
in the manner of the Distill figures.  matplotlib is an optional extra (``deconvlint[plot]``),
imported here only, through its object API (no pyplot state).

What is drawn comes from the finding's metrics, so a JSON report could be drawn the same way:
the probe's ``measured_response`` (one period, averaged over the interior, over its mean), the
weight rules' ``response`` (the constant-input response per phase), or else the coverage
``pattern`` (the outer product of the per-axis patterns).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from deconvlint.errors import DeconvlintError
from deconvlint.results import Finding, Results

#: Periods drawn on each axis.
PERIODS = 3
#: Above this many cells on an axis, the values are not written in the cells.
MAX_LABELLED = 24
#: At most this many cells of one period per axis are drawn (clipped before they are built).
MAX_CELLS = 32


class PlotError(DeconvlintError):
    """--plot cannot work: no matplotlib, or the folder cannot be made."""


def check_plotting(folder: Path) -> None:
    """Fail early, before any model is checked, when ``--plot`` cannot write."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(
            "--plot: matplotlib is not installed (pip install 'deconvlint[plot]')"
        ) from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlotError(f"--plot: cannot make the folder {str(folder)!r}: {exc.strerror}") from None


def finding_grid(finding: Finding) -> tuple[np.ndarray, str] | None:
    """One period of what the finding is about, as a 2-D array, and what it is."""
    m = finding.metrics
    if m.get("measured_response") is not None:
        grid, what = np.asarray(m["measured_response"], dtype=float), "measured response / mean"
    elif m.get("response") is not None:
        grid, what = np.asarray(m["response"], dtype=float), "constant-input response per phase"
    elif m.get("pattern"):
        axes = [np.atleast_1d(np.asarray(p, dtype=float))[:MAX_CELLS] for p in m["pattern"]]
        grid = axes[0]
        for a in axes[1:]:
            grid = np.multiply.outer(grid, a)
        what = "interior coverage (taps per output position)"
    else:
        return None
    while grid.ndim > 2:  # 3-D: the first plane
        grid = grid[0]
    return np.atleast_2d(grid)[:MAX_CELLS, :MAX_CELLS], what


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def _draw(finding: Finding, path: str, grid: np.ndarray, what: str, target: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    period = grid.shape
    tiled = np.tile(grid, (PERIODS if period[0] > 1 else 1, PERIODS))
    rows, cols = tiled.shape
    size = max(0.45, min(0.8, 9.0 / max(rows, cols)))
    fig = Figure(figsize=(max(4.5, cols * size + 2.0), max(2.2, rows * size + 1.6)), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(tiled, cmap="magma", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    low, high = float(tiled.min()), float(tiled.max())
    if rows <= MAX_LABELLED and cols <= MAX_LABELLED:
        for (r, c), v in np.ndenumerate(tiled):
            light = high > low and (v - low) / (high - low) < 0.6
            ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=7,
                    color="white" if light else "black")  # fmt: skip
    for c in range(period[1], cols, period[1]):  # period boundaries
        ax.axvline(c - 0.5, color="cyan", linewidth=1)
    for r in range(period[0], rows, period[0]) if period[0] > 1 else ():
        ax.axhline(r - 0.5, color="cyan", linewidth=1)
    ax.set_xticks([])
    ax.set_yticks([])
    shown = " x ".join(str(p) for p in period if p > 1) or "1"
    ax.set_title(
        f"{finding.node}: {finding.rule} {finding.name} [{finding.severity}]\n"
        f"{what}, period {shown}, {PERIODS} periods",
        fontsize=8,
    )
    fig.text(0.01, 0.01, path, fontsize=6, color="gray")
    fig.tight_layout()
    fig.savefig(target)


def write_plots(report: Results, folder: Path) -> list[Path]:
    """Write a PNG per finding that has a pattern into ``folder``; returns the files written."""
    written: list[Path] = []
    used: set[str] = set()
    for result in report.results:
        for finding in result.findings:
            found = finding_grid(finding)
            if found is None:
                continue
            stem = f"{_name(Path(result.path).stem)}__{_name(finding.node)}__{finding.rule}"
            name, count = stem, 1
            while name in used:
                count += 1
                name = f"{stem}_{count}"
            used.add(name)
            target = folder / f"{name}.png"
            _draw(finding, result.path, *found, target)
            written.append(target)
    return written
