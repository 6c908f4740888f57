"""deconvlint's docstring examples are tests of every ``pytest`` run (``testpaths`` names the
package), collected as ``pytest --doctest-modules deconvlint`` collects them, with two changes:

- An example that needs an optional extra which is not installed (torch, onnxruntime) is skipped
  with that reason: every example of a module that imports the extra when it loads, or one
  example that imports it itself (``>>> import torch``).  Any other import error fails, as it
  should: ``--doctest-ignore-import-errors`` would skip a module whatever broke its import.
- The examples run in the repository's root, where the files they name (``examples/...``) are.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem, DoctestModule

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "deconvlint"
OPTIONAL_EXTRAS = ("torch", "onnxruntime")
_IMPORTS_AN_EXTRA = re.compile(rf"^\s*(?:import|from)\s+({'|'.join(OPTIONAL_EXTRAS)})\b", re.M)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


class PackageDoctests(DoctestModule):
    """A module's docstring examples; skipped (not failed) where an optional extra is missing."""

    def collect(self) -> Iterator[DoctestItem]:
        name = ".".join(self.path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            extra = (error.name or "").partition(".")[0]
            if extra in OPTIONAL_EXTRAS:
                pytest.skip(f"{name} imports {extra}, which is not installed")
            raise
        for item in super().collect():
            needed = {m for e in item.dtest.examples for m in _IMPORTS_AN_EXTRA.findall(e.source)}
            missing = sorted(m for m in needed if not _installed(m))
            if missing:
                reason = f"the example imports {', '.join(missing)}, which is not installed"
                item.add_marker(pytest.mark.skip(reason=reason))
            yield item


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Iterable[pytest.Collector]:
    collected = yield
    if file_path.suffix != ".py" or file_path.name == "__main__.py":
        return collected
    if PACKAGE not in file_path.resolve().parents:
        return collected
    # the package's modules hold examples, no tests: a module named on the command line is not
    # also imported as a test module (which would fail where an extra is missing)
    return [PackageDoctests.from_parent(parent, path=file_path)]


@pytest.fixture(autouse=True)
def _examples_run_in_the_repository(request: pytest.FixtureRequest) -> None:
    if isinstance(request.node, DoctestItem):
        request.getfixturevalue("monkeypatch").chdir(ROOT)
