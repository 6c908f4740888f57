"""Where a layer was written: ``Node.source`` as ``"path/to/file.py:LINE"``.

* A module: the line that assigned it in its parent's class (``self.up = nn.ConvTranspose2d(...)``
  or ``self.add_module("up", ...)``), found with ``inspect`` and ``ast``; a child of an
  ``nn.Sequential``/``nn.ModuleList``/``nn.ModuleDict`` takes the line of that container.
* A functional call: the line of the call, the innermost frame outside torch (and outside this
  front end) when the call was seen, or the last such frame of a recorded stack trace.

Nothing here raises: a source that cannot be found is ``None``.

>>> import torch
>>> class Decoder(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.up = torch.nn.ConvTranspose2d(4, 4, 3)
>>> SourceFinder.for_model(Decoder()).module_source("up")  # doctest: +SKIP
'.../decoder.py:4'
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _torch_dir() -> str:
    torch = sys.modules.get("torch")
    file = getattr(torch, "__file__", None)
    return _folder_of(file) if file else "\0"


@functools.lru_cache(maxsize=8)
def _folder_of(file: str) -> str:
    return os.path.dirname(os.path.abspath(file)) + os.sep


def shown_path(path: str) -> str:
    """``path`` relative to the working folder when it lies below it, else absolute."""
    return _shown_path(path, os.getcwd())


# Both run for every node the tracer creates (a few thousand per model, few distinct paths).
@functools.lru_cache(maxsize=4096)
def _shown_path(path: str, cwd: str) -> str:
    try:
        absolute = os.path.abspath(path)
        relative = os.path.relpath(absolute, cwd)
    except ValueError:  # another drive on Windows
        return path
    return absolute if relative.startswith(os.pardir) else relative


def _is_user_file(path: str, torch_dir: str) -> bool:
    return _user_file(path, torch_dir, os.getcwd())


@functools.lru_cache(maxsize=4096)
def _user_file(path: str, torch_dir: str, cwd: str) -> bool:
    if not path or path.startswith("<"):
        return False
    absolute = os.path.abspath(path)  # relative to cwd, which is part of the cache key
    return not absolute.startswith(torch_dir) and os.path.dirname(absolute) != _HERE


def user_frame_source(frame: FrameType | None) -> str | None:
    """The innermost frame at or above ``frame`` in user code, as ``path:line``."""
    torch_dir, cwd = _torch_dir(), os.getcwd()  # once per call: the tracer calls it per node
    while frame is not None:
        path = frame.f_code.co_filename
        if _user_file(path, torch_dir, cwd) and os.path.basename(path) not in ("threading.py",):
            return f"{_shown_path(path, cwd)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def caller_source() -> str | None:
    """The user code line that is running now (called from inside a hook or a tracer)."""
    try:
        return user_frame_source(sys._getframe(1))
    except Exception:
        return None


def stack_trace_source(stack_trace: str | None) -> str | None:
    """The last user frame of a recorded ``stack_trace`` (innermost last, as Python prints)."""
    if not stack_trace:
        return None
    torch_dir = _torch_dir()
    found = None
    for path, line in _FRAME.findall(stack_trace):
        if _is_user_file(path, torch_dir):
            found = f"{shown_path(path)}:{line}"
    return found


class SourceFinder:
    """Construction lines of modules, by qualified name.

    ``parent_class(name)`` returns the class of the module called ``name`` (``""``: the root),
    or None; ``is_container(name)`` tells a Sequential/ModuleList/ModuleDict.
    """

    def __init__(
        self,
        parent_class: Callable[[str], type | None],
        is_container: Callable[[str], bool],
    ) -> None:
        self._class = parent_class
        self._is_container = is_container
        self._assignments: dict[type, _Assignments | None] = {}

    @classmethod
    def for_model(cls, model: Any, modules: dict[str, Any] | None = None) -> SourceFinder:
        """``modules``: the model's submodules by qualified name, when the caller has them."""
        from torch import nn

        containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

        @functools.cache
        def submodule(name: str) -> Any:  # a lookup per name asked, not a walk of the model
            if modules is not None and name in modules:
                return modules[name]
            try:
                return model.get_submodule(name)
            except (AttributeError, TypeError):
                return None

        def parent_class(name: str) -> type | None:
            module = submodule(name)
            return None if module is None else type(module)

        def is_container(name: str) -> bool:
            return isinstance(submodule(name), containers)

        return cls(parent_class, is_container)

    @classmethod
    def for_type_names(cls, types: dict[str, str]) -> SourceFinder:
        """From ``{qualified name: "package.module.Class"}`` (an export's ``nn_module_stack``);
        classes are looked up among the modules already imported, never imported here."""

        def parent_class(name: str) -> type | None:
            module_name, _, class_name = types.get(name, "").rpartition(".")
            found = getattr(sys.modules.get(module_name), class_name, None)
            return found if isinstance(found, type) else None

        def is_container(name: str) -> bool:
            return types.get(name, "").rpartition(".")[2] in (
                "Sequential",
                "ModuleList",
                "ModuleDict",
            )

        return cls(parent_class, is_container)

    def module_source(self, qualified: str) -> str | None:
        try:
            return self._module_source(qualified, 0)
        except Exception:
            return None

    def _module_source(self, qualified: str, depth: int) -> str | None:
        if not qualified or depth > 64:
            return None
        parent, _, attr = qualified.rpartition(".")
        found = self._search(parent, attr, "self") or self._search(parent, attr, "local")
        if found is not None or not self._is_container(parent):
            return found
        # a child of a container: the local variable of that name where the container was
        # built (``up1 = ...; nn.Sequential(OrderedDict(up1=up1))``), else the container's line
        owner = parent.rpartition(".")[0] if "." in parent else ""
        if parent:
            found = self._search(owner, attr, "local")
        return found or self._module_source(parent, depth + 1)

    def _search(self, parent: str, attr: str, where: str) -> str | None:
        cls = self._class(parent)
        if cls is None:
            return None
        for klass in cls.__mro__:
            if (klass.__module__ or "").startswith("torch.") or klass is object:
                continue
            if klass not in self._assignments:
                self._assignments[klass] = _class_assignments(klass)
            found = self._assignments[klass]
            if found is None:
                continue
            table = found.attributes if where == "self" else found.locals
            line = table.get(attr, found.dynamic if where == "self" else None)
            if line is not None:
                return f"{shown_path(found.path)}:{line}"
        return None


def _self_attribute(target: ast.expr) -> str | None:
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
    ):
        return target.attr
    return None


@dataclass
class _Assignments:
    """Where one class assigns its modules."""

    path: str
    attributes: dict[str, int]  # self.<name> = ... / add_module("<name>", ...): first line
    locals: dict[str, int]  # <name> = SomeCall(...): first line
    dynamic: int | None  # first add_module/setattr whose name is computed


#: Parsed source files, by path: ``(mtime_ns, size, {qualname: ClassDef or None})``; a
#: qualname defined twice maps to None.  Parsing a file once instead of once per class (what
#: ``inspect.getsourcelines`` does) was most of the cost of naming layers.
_PARSED: dict[str, tuple[int, int, dict[str, ast.ClassDef | None]]] = {}
_MAX_PARSED = 64


def _file_classes(path: str) -> dict[str, ast.ClassDef | None] | None:
    import linecache

    try:
        info = os.stat(path)
    except OSError:
        return None
    cached = _PARSED.get(path)
    if cached is not None and cached[:2] == (info.st_mtime_ns, info.st_size):
        return cached[2]
    linecache.checkcache(path)
    try:
        tree = ast.parse("".join(linecache.getlines(path)))
    except (SyntaxError, ValueError):
        return None
    classes: dict[str, ast.ClassDef | None] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                name = prefix + child.name
                classes[name] = child if name not in classes else None
                visit(child, name + ".")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{prefix}{child.name}.<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    if len(_PARSED) >= _MAX_PARSED:
        _PARSED.clear()
    _PARSED[path] = (info.st_mtime_ns, info.st_size, classes)
    return classes


def _class_node(klass: type) -> tuple[str, ast.AST, int] | None:
    """``(path, tree, first_line)`` of the class: from the file parsed once when the class is
    found there unambiguously, else through ``inspect`` (line numbers relative to the class)."""
    try:
        path = inspect.getsourcefile(klass)
    except TypeError:
        return None
    if path is None:
        return None
    node = (_file_classes(path) or {}).get(klass.__qualname__)
    if node is not None:
        return path, node, 1
    try:
        lines, start = inspect.getsourcelines(klass)
        return path, ast.parse(textwrap.dedent("".join(lines))), start
    except (OSError, TypeError, SyntaxError):
        return None


#: Assignments by class, with the class's syntax tree they were read from: valid while
#: ``_PARSED`` hands out that same tree (the file is unchanged).
_WALKED: dict[type, tuple[ast.AST, _Assignments]] = {}


def _class_assignments(klass: type) -> _Assignments | None:
    located = _class_node(klass)
    if located is None:
        return None
    walked = _WALKED.get(klass)
    if walked is not None and walked[0] is located[1]:
        return walked[1]
    found = _walk_assignments(*located)
    if len(_WALKED) >= 4 * _MAX_PARSED:
        _WALKED.clear()
    _WALKED[klass] = (located[1], found)
    return found


def _walk_assignments(path: str, tree: ast.AST, start: int) -> _Assignments:
    found: dict[str, int] = {}
    local: dict[str, int] = {}
    dynamic: int | None = None
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Assign):
            names = [n for n in map(_self_attribute, node.targets) if n]
            if isinstance(node.value, ast.Call):
                line = start + node.lineno - 1
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        local[target.id] = min(local.get(target.id, line), line)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            names = [n for n in [_self_attribute(node.target)] if n]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("add_module", "register_module", "setattr")
        ) or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
        ):
            args = node.args[1:] if isinstance(node.func, ast.Name) else node.args
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                names = [args[0].value]
            else:
                line = start + node.lineno - 1
                dynamic = line if dynamic is None else min(dynamic, line)
        for name in names:
            line = start + node.lineno - 1
            found[name] = min(found.get(name, line), line)
    return _Assignments(path, found, local, dynamic)
