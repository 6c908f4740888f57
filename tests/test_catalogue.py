"""The rule catalogue ships pre-parsed: ``deconvlint/catalogue.json`` is the YAML of ``rules/``,
and no run imports PyYAML unless it reads a ``.deconvlint.yaml``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deconvlint.catalogue import CATALOGUE_JSON, load_catalogue, read_yaml_catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_catalogue_is_the_yaml() -> None:
    shipped = json.loads(CATALOGUE_JSON.read_text(encoding="utf-8"))
    assert shipped == read_yaml_catalogue(ROOT / "rules"), (
        "rules/*.yaml and deconvlint/catalogue.json differ: run `python -m deconvlint.catalogue`"
    )
    assert list(load_catalogue()) == sorted(p.stem for p in (ROOT / "rules").glob("DL*.yaml"))


def _imports_yaml(tmp_path: Path, *args: str) -> str:
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['deconvlint', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('deconvlint', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('yaml' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    return proc.stderr.splitlines()[-1]


def test_yaml_is_imported_only_for_a_yaml_configuration(tmp_path: Path) -> None:
    model = str(ROOT / "examples" / "cyclegan_decoder.onnx")
    source = tmp_path / "gen.py"
    source.write_text("import torch.nn as nn\nup = nn.ConvTranspose2d(8, 4, 3, stride=2)\n")
    assert _imports_yaml(tmp_path, model) == "False"
    assert _imports_yaml(tmp_path, str(source)) == "False"
    assert _imports_yaml(tmp_path, "--explain", "DL001") == "False"
    (tmp_path / ".deconvlint.yaml").write_text("ignore: [DL004]\n")
    assert _imports_yaml(tmp_path, model) == "True"
