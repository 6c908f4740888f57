"""The package's layering, read from its source with ``ast`` (nothing of deconvlint is imported).

- No import circles among deconvlint's modules.  Every ``import`` counts, at module level, inside
  a function or under ``if TYPE_CHECKING:`` (the package's lazy public names import what its
  ``TYPE_CHECKING`` block names), and ``from pkg import submodule`` imports the submodule.
- No module takes another module's ``_private`` name: ``from deconvlint.x import _y``, or
  ``x._y`` where ``x`` is a deconvlint module imported under that name.  A name another module
  needs is public and lives where both can reach it.

The package refactor (issue 18) removed the last of them; there is no list of exceptions.

That checking an ONNX file never imports torch is tested by running the CLI
(tests/cli/test_cli.py::test_onnx_check_never_imports_torch_or_onnx); it is not repeated here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deconvlint"


def modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (its file, whether it is a package's ``__init__``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, with its leading dots resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for an attribute chain on a plain name, else None."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(names)])


def scan(package: Path) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """The import graph among the package's modules, and the private names each module takes
    from another one, as (importer, ``module._name``)."""
    known = modules(package)
    edges: dict[str, set[str]] = {m: set() for m in known}
    private: set[tuple[str, str]] = set()
    for module, (path, is_package) in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        aliases: dict[str, str] = {}  # local name -> the deconvlint module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _absolute(module, is_package, node)
                if source != "deconvlint" and not source.startswith("deconvlint."):
                    continue
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in known:
                        edges[module].add(submodule)
                        aliases[alias.asname or alias.name] = submodule
                    else:
                        edges[module].add(source)
                        if _private(alias.name):
                            private.add((module, f"{source}.{alias.name}"))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "deconvlint" or alias.name.startswith("deconvlint."):
                        edges[module].add(alias.name)
                        if alias.asname:
                            aliases[alias.asname] = alias.name
                        else:  # ``import a.b`` binds ``a``; ``a.b._c`` is read below
                            aliases.setdefault("deconvlint", "deconvlint")
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            owner = _dotted(node.value)
            if owner is None:
                continue
            head, _, rest = owner.partition(".")
            if head not in aliases:
                continue
            target = ".".join(filter(None, [aliases[head], rest]))
            if target in known and target != module:
                private.add((module, f"{target}.{node.attr}"))
        edges[module] &= known.keys()
        edges[module].discard(module)
    return edges, private


def cycles(edges: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The import circles: each strongly connected component of more than one module (Tarjan's
    algorithm, iterative), as a sorted tuple."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.add(tuple(sorted(component)))
    return found


def _listing(items: Iterable[tuple[str, ...]]) -> str:
    return "\n".join(f"  {item}" for item in sorted(items)) or "  (none)"


def test_no_import_circles() -> None:
    found = cycles(scan(PACKAGE)[0])
    assert not found, f"import circles:\n{_listing(found)}"


def test_no_module_takes_another_modules_private_name() -> None:
    found = scan(PACKAGE)[1]
    assert not found, f"imports of another module's _private name:\n{_listing(found)}"


# --- the scan itself, on small packages written for it ------------------------------------------


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "deconvlint" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "deconvlint"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # module level, both ways
        ({"a.py": "import deconvlint.b\n", "b.py": "from deconvlint.a import x\n"}, {"a", "b"}),
        # inside a function, and relative
        ({"a.py": "def f():\n    from . import b\n", "b.py": "from .a import x\n"}, {"a", "b"}),
        # ``from package import submodule`` imports the submodule
        (
            {
                "p/__init__.py": "",
                "p/c.py": "from deconvlint import a\n",
                "a.py": "from deconvlint.p import c\n",
            },
            {"a", "p.c"},
        ),
        # under TYPE_CHECKING
        (
            {
                "a.py": "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from deconvlint.b import B\n",
                "b.py": "import deconvlint.a as a\n",
            },
            {"a", "b"},
        ),
        # one way only, and a name from outside the package
        ({"a.py": "import deconvlint.b\nimport os\n", "b.py": "from os import path\n"}, set()),
    ],
)
def test_the_scan_finds_a_circle(tmp_path: Path, files: dict[str, str], expected: set[str]) -> None:
    found = cycles(scan(_package(tmp_path, {"__init__.py": "", **files}))[0])
    assert found == ({tuple(sorted(f"deconvlint.{m}" for m in expected))} if expected else set())


def test_the_scan_finds_private_names_imported_or_read_through_a_module(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "p/__init__.py": "",
            "p/a.py": "_x = 1\n_y = 2\n_z = 3\nw = 4\n__all__ = ['w']\n",
            "b.py": "from deconvlint.p.a import _x, w, __all__\n",
            "c.py": "from deconvlint.p import a\nprint(a._y, a.w)\n",
            "d.py": "import deconvlint.p.a\nprint(deconvlint.p.a._z)\n",
            "e.py": "import deconvlint.p.a as alias\nprint(alias._x)\n",
            "f.py": "from .p import a as other\nclass K:\n    _own = 1\nprint(K._own, other._y)\n",
            "p/g.py": "from . import a\nfrom .a import _z\n",
        },
    )
    assert scan(package)[1] == {
        ("deconvlint.b", "deconvlint.p.a._x"),
        ("deconvlint.c", "deconvlint.p.a._y"),
        ("deconvlint.d", "deconvlint.p.a._z"),
        ("deconvlint.e", "deconvlint.p.a._x"),
        ("deconvlint.f", "deconvlint.p.a._y"),
        ("deconvlint.p.g", "deconvlint.p.a._z"),
    }
