"""``--report FILE.html``: one self-contained page, checked as text and rendered by a real
browser (Debian's headless chromium; skipped with the reason when absent)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from deconvlint.formatters import html
from deconvlint.report import FileResult, Finding, Report, Suggestion
from tests.support.cli import REPO, run_cli
from tests.support.external_tools import needs_chromium

#: Where the browser test leaves its screenshot, for people to look at.
SCREENSHOT_DIR = os.environ.get("DECONVLINT_SCREENSHOT_DIR")


def report_of_examples(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        *extra, "--report", str(path), cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO))
    )


def test_heatmap_tiles_the_outer_product() -> None:
    svg = html.heatmap([[1, 2], [1, 2]])
    values = re.findall(r"<title>([^<]+)</title>", svg)
    side = 2 * html._tiles(2)
    assert len(values) == side * side
    assert values[: 2 * 2] == ["1", "2", "1", "2"]  # first row: 1*[1, 2] tiled
    assert values[side : side + 4] == ["2", "4", "2", "4"]  # second row: 2*[1, 2]
    fills = re.findall(r'fill="(#[0-9a-f]{6})"', svg)
    assert fills[0] != fills[side + 1]  # 1 and 4 are shaded apart


def test_heatmap_marks_holes_and_handles_1d_3d_and_junk() -> None:
    holes = html.heatmap([[1, 0]])
    assert 'stroke="#c62828"' in holes and "L (one axis)" in holes
    cube = html.heatmap([[2, 1], [1, 2], [1, 3]])
    assert "at D phase 0" in cube
    assert re.findall(r"<title>([^<]+)</title>", cube)[:2] == ["2", "6"]  # 2 * 1 * [1, 3]
    for junk in (None, "x", [[]], [["a"]], [[float("nan")]]):
        assert html.heatmap(junk) == ""


def test_heatmap_of_a_long_period_is_clipped() -> None:
    svg = html.heatmap([list(range(1, 41)), [1, 2]])
    rows = {int(y) for y in re.findall(r'<rect x="\d+" y="(\d+)"', svg)}
    assert len(rows) == html.HEATMAP_MAX_CELLS


def test_page_is_self_contained_and_escapes_everything() -> None:
    finding = Finding(
        rule="DL001",
        name="uneven-overlap",
        severity="warning",
        node="<script>alert(1)</script>",
        op="ConvTranspose",
        message="a & b < c",
        metrics={"pattern": [[1, 2], [1, 2]], "nodes": ["up<1>", "up2"]},
        suggestions=[Suggestion("t", {}, 'nn.Conv2d(1, 1, 3) # "<x>"')],
    )
    page = html.format_report(Report([FileResult("m<1>.onnx", [finding])]))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b &lt; c" in page and "<code>up&lt;1&gt;</code> &rarr; <code>up2</code>" in page
    assert "nn.Conv2d(1, 1, 3) # &quot;&lt;x&gt;&quot;" in page
    # nothing fetched from anywhere: no links, external scripts, fonts or images
    without_namespace = page.replace(html.SVG_NS, "")
    assert not re.search(r"https?://|<link|<img|src=|@import|url\(|@font-face", without_namespace)


def test_cli_writes_the_report_and_keeps_stdout(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    proc = report_of_examples(path, "examples", "-q")
    assert proc.returncode == 1, proc.stderr
    assert "examples/cyclegan_decoder.onnx:decoder.up1: DL001" in proc.stdout
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('class="finding"') == 7  # the ONNX examples' 4, the Keras example's 3
    assert page.count("<svg") == 7
    assert "Found 7 findings (6 warnings, 1 info) in 6 files." in page


def test_cli_report_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    proc = report_of_examples(tmp_path / "no" / "such" / "r.html", "examples")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"{tmp_path / 'no' / 'such' / 'r.html'}: error: --report: ")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_chromium_renders_the_report(tmp_path: Path) -> None:
    browser = needs_chromium()
    page = tmp_path / "report.html"
    (tmp_path / "broken.onnx").write_bytes(b"garbage")
    proc = report_of_examples(page, "examples", str(tmp_path / "broken.onnx"))
    assert proc.returncode == 2, proc.stderr
    shots = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    screenshot = shots / "deconvlint-report.png"
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    base += ["--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = subprocess.run(
        [*base, f"--screenshot={screenshot}", "--window-size=1200,1600", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert screenshot.exists(), shot.stderr
    assert _png_size(screenshot) == (1200, 1600)
    assert len(screenshot.read_bytes()) > 20_000, "the screenshot looks blank"
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    text = re.sub(r"<[^>]+>", " ", dom.split("<script>")[0])
    text = " ".join(text.split())
    assert "deconvlint report" in text
    assert "Found 7 findings (6 warnings, 1 info) in 6 files; 1 file could not be analysed." in text
    assert "examples/cyclegan_decoder.onnx" in text and "broken.onnx" in text
    assert "DL003 stacked-uneven-overlap" in text
    assert "decoder.up1 → decoder.up2" in text
    assert "nn.ConvTranspose2d(16, 8, kernel_size=4, stride=2, padding=1)" in text
    assert dom.count("<svg") == 7 and dom.count("<rect") > 7 * 16
