"""The rule catalogue ships pre-parsed: ``deconvlint/rules/catalogue.json`` is the YAML of ``rules/``,
and no run imports PyYAML unless it reads a ``.deconvlint.yaml``; what else a run leaves out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deconvlint.rules.catalogue import CATALOGUE_JSON, load_catalogue, read_yaml_catalogue

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_catalogue_is_the_yaml() -> None:
    shipped = json.loads(CATALOGUE_JSON.read_text(encoding="utf-8"))
    assert shipped == read_yaml_catalogue(ROOT / "rules"), (
        "rules/*.yaml and deconvlint/rules/catalogue.json differ: run `python -m deconvlint.rules.catalogue`"
    )
    assert list(load_catalogue()) == sorted(p.stem for p in (ROOT / "rules").glob("DL*.yaml"))


def _imported(tmp_path: Path, modules: list[str], *args: str) -> list[str]:
    """Which of ``modules`` a CLI run with ``args`` imports, and whether the cyclic collector
    was on when the source files and when the models were checked."""
    script = (
        "import gc, runpy, sys\n"
        "import deconvlint.cli.parallel as parallel, deconvlint.source as source\n"
        "seen = []\n"
        "def spy(module, name):\n"
        "    real = getattr(module, name)\n"
        "    def call(*a, **k):\n"
        "        seen.append(f'{name}:gc={gc.isenabled()}')\n"
        "        return real(*a, **k)\n"
        "    setattr(module, name, call)\n"
        "spy(source, 'check_file')\n"
        "spy(parallel, 'check_in_order')\n"
        f"sys.argv = ['deconvlint', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('deconvlint', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(*[m for m in {modules!r} if m in sys.modules], *seen, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    return proc.stderr.splitlines()[-1].split()


def test_yaml_is_imported_only_for_a_yaml_configuration(tmp_path: Path) -> None:
    model = str(ROOT / "examples" / "cyclegan_decoder.onnx")
    source = tmp_path / "gen.py"
    source.write_text("import torch.nn as nn\nup = nn.ConvTranspose2d(8, 4, 3, stride=2)\n")
    assert _imported(tmp_path, ["yaml"], model) == ["check_in_order:gc=True"]
    assert _imported(tmp_path, ["yaml"], "--explain", "DL001") == []
    (tmp_path / ".deconvlint.yaml").write_text("ignore: [DL004]\n")
    assert _imported(tmp_path, ["yaml"], model) == ["yaml", "check_in_order:gc=True"]


def test_a_clean_source_run_needs_no_yaml_libcst_nor_collector(tmp_path: Path) -> None:
    """Lint-only source mode on a clean file: no libcst (only a fix or a finding's rewritten
    code needs it), no PyYAML, and the cyclic collector paused until the models come."""
    source = tmp_path / "gen.py"
    source.write_text(
        "import torch.nn as nn\nup = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)\n"
    )
    heavy = ["yaml", "libcst", "onnx", "torch"]
    seen = _imported(tmp_path, heavy, str(source))
    assert seen == ["check_file:gc=False", "check_in_order:gc=True"]


def test_a_lint_only_source_run_loads_only_what_it_uses(tmp_path: Path) -> None:
    """Start-up is most of a lint-only source run (issue 17, target 3): the modules that only a
    traceback (--debug), a folder's git listing, a torch file's sniffing, --diff, a progress bar
    or a help text need stay unloaded, as does the targets module (torch models and files)."""
    source = tmp_path / "gen.py"
    source.write_text(
        "import torch.nn as nn\nup = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)\n"
    )
    unused = [
        "traceback",  # --debug
        "subprocess",  # git, for a folder's .gitignore
        "zipfile",  # sniffing a torch file
        "pickletools",
        "difflib",  # --diff
        "shutil",  # argparse's help width, a progress bar's
        "threading",
        "deconvlint.frontends.target",
    ]
    assert _imported(tmp_path, unused, str(source)) == [
        "check_file:gc=False",
        "check_in_order:gc=True",
    ]
