"""Where a layer was written: ``Node.source`` as ``"path/to/file.py:LINE"``.

* A module: the line that assigned it in its parent's class (``self.up = nn.ConvTranspose2d(...)``
  or ``self.add_module("up", ...)``), found with ``inspect`` and ``ast``.  A child of an
  ``nn.Sequential``/``nn.ModuleList``/``nn.ModuleDict`` takes the line of its own constructor
  call inside that container's call (``nn.Sequential(a, b)``, ``nn.ModuleList([a, b])``, an
  ``OrderedDict``/dict of named layers, a list in a local variable spread with ``*``, nested
  containers), found by its index or name in the container's syntax tree; where the element
  cannot be read from the syntax (a comprehension, ``append`` in a loop), the container's line.
* A module an installed library builds (a file under ``site-packages``): the place in the
  user's code that built it, i.e. the nearest enclosing module assigned in user code, or the
  user's call of the root model's class (:func:`remember_root_call`, by ``deconvlint.check``
  and by the CLI's targets); the library's own line is kept as ``SourceLine.library``.
* A functional call: the line of the call, the innermost frame outside torch (and outside this
  front end) when the call was seen, or the last such frame of a recorded stack trace.

Nothing here raises: a source that cannot be found is ``None``.

>>> import torch
>>> class Decoder(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.up = torch.nn.ConvTranspose2d(4, 4, 3)
>>> SourceFinder.for_model(Decoder()).module_source("up") is None  # a class in no file
True

Those five lines saved as ``decoder.py`` give ``'decoder.py:5'`` (``self.up = ...``).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import os
import re
import sys
import sysconfig
import textwrap
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
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


class SourceLine(str):
    """A source as ``"path:line"`` (a ``str``, so every reader stores it as before), with the
    installed library's own line in ``library`` when ``self`` is the user's call around it."""

    library: str | None = None
    #: ``(qualified name, "package.module.Class")`` of the enclosing modules (and the layer)
    #: whose classes an installed library (not torch) defines, outermost first
    owners: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(
        cls, source: str, library: str | None = None, owners: tuple[tuple[str, str], ...] = ()
    ) -> SourceLine:
        line = cls(source)
        line.library, line.owners = library, owners
        return line


#: The user's call that built a root model (``"path:line"``: ``model = UNet(...)``), by model,
#: for a root whose class lives in an installed library.  Filled by ``deconvlint.check`` (the
#: caller's file) and by the CLI (a factory target's body); read by :class:`SourceFinder`.
_ROOT_CALLS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def remember_root_call(model: Any, source: str | None) -> None:
    """Record where the user's code built ``model`` (see :data:`_ROOT_CALLS`)."""
    if source:
        with contextlib.suppress(TypeError):  # not weak-referenceable
            _ROOT_CALLS[model] = source


def factory_root_call(model: Any, factory: Any) -> str | None:
    """The call of ``model``'s library class in the body of ``factory`` (a function), or in the
    file of the module ``factory`` is (a module target naming an instance)."""
    try:
        cls = type(model)
        file = inspect.getsourcefile(cls)
        if file is None or not is_library_file(file):
            return None
        if inspect.ismodule(factory):
            where = inspect.getsourcefile(factory)
            return call_site(cls, where) if where else None
        if not inspect.isfunction(factory):
            return None
        lines, first = inspect.getsourcelines(factory)
        where = inspect.getsourcefile(factory)
        return call_site(cls, where, first, first + len(lines) - 1) if where else None
    except Exception:
        return None


def library_root_call(model: Any, frame: FrameType | None) -> str | None:
    """The call of ``model``'s class in the code running in ``frame`` (its function, else its
    file), when that class lives in an installed library and the frame's file does not."""
    try:
        cls = type(model)
        file = inspect.getsourcefile(cls)
        if frame is None or file is None or not is_library_file(file):
            return None
        code = frame.f_code
        return call_site(cls, code.co_filename, code.co_firstlineno, frame.f_lineno) or call_site(
            cls, code.co_filename
        )
    except Exception:
        return None


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    dirs = {sysconfig.get_paths().get(k) for k in ("purelib", "platlib")}
    try:
        import site

        dirs.update(site.getsitepackages())
        dirs.add(site.getusersitepackages())
    except Exception:  # a virtualenv without site.getsitepackages
        pass
    return tuple(os.path.abspath(d) + os.sep for d in dirs if d)


def is_library_file(path: str) -> bool:
    """Whether ``path`` belongs to an installed package (``site-packages``/``dist-packages``)
    rather than to the user's project (an editable install lives in the project: user code).

    >>> is_library_file("/usr/lib/python3/dist-packages/monai/networks/nets/unet.py")
    True
    >>> is_library_file("models/unet.py")
    False
    """
    absolute = os.path.abspath(path)
    parts = absolute.split(os.sep)
    return (
        "site-packages" in parts or "dist-packages" in parts or absolute.startswith(_library_dirs())
    )


@functools.lru_cache(maxsize=1024)
def _is_library_class(cls: type) -> bool:
    module = cls.__module__ or ""
    if module == "torch" or module.startswith("torch."):
        return False
    try:
        file = inspect.getsourcefile(cls)
    except TypeError:
        return False
    return file is not None and is_library_file(file)


def call_site(cls: type, file: str, first: int = 1, last: int | None = None) -> str | None:
    """The line of a call of ``cls`` by name (``UNet(...)``, ``nets.UNet(...)``) in ``file``,
    as ``"path:line"``: the last one between lines ``first`` and ``last`` (the call that ran
    before line ``last``), or the first in the file without ``last``; None when there is none
    or the file is a library's."""
    if is_library_file(file):
        return None
    tree = _file_tree(file)
    if tree is None:
        return None
    lines = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and _callee_name(node) == cls.__name__
        and first <= node.lineno <= (last or node.lineno)
    ]
    if not lines:
        return None
    return f"{shown_path(file)}:{max(lines) if last else min(lines)}"


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
        root_call: str | None = None,
    ) -> None:
        self._class = parent_class
        self._is_container = is_container
        self._root_call = root_call
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

        try:
            root_call = _ROOT_CALLS.get(model)
        except TypeError:
            root_call = None
        return cls(parent_class, is_container, root_call)

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
        """Where module ``qualified`` was built, for the user: a :class:`SourceLine`."""
        try:
            place = self._place(qualified, 0)
            if place is None or not is_library_file(place.path):
                return None if place is None else SourceLine(place.shown)
            user = self._user_place(qualified)  # None: no user code found, the library's line
            return SourceLine.make(
                user or place.shown, place.shown if user else None, self._owners(qualified)
            )
        except Exception:
            return None

    def _owners(self, qualified: str) -> tuple[tuple[str, str], ...]:
        parts = qualified.split(".")
        found = []
        for end in range(len(parts) + 1):
            name = ".".join(parts[:end])
            cls = self._class(name)
            if cls is not None and _is_library_class(cls):
                found.append((name, f"{cls.__module__}.{cls.__qualname__}"))
        return tuple(found)

    def _user_place(self, qualified: str) -> str | None:
        """The nearest enclosing module built in user code, else the user's call of the root."""
        parts = qualified.split(".")
        for end in range(len(parts) - 1, 0, -1):
            place = self._place(".".join(parts[:end]), 0)
            if place is not None and not is_library_file(place.path):
                return place.shown
        return self._root_call

    def _place(self, qualified: str, depth: int) -> _Place | None:
        if not qualified or depth > 64:
            return None
        parent, _, attr = qualified.rpartition(".")
        found = self._search(parent, attr, "self") or self._search(parent, attr, "local")
        if found is not None or not self._is_container(parent):
            return found
        # a child of a container: the local variable of that name where the container was
        # built (``up1 = ...; nn.Sequential(OrderedDict(up1=up1))``), else the child's own
        # call inside the container's call, else the container's line
        owner = parent.rpartition(".")[0] if "." in parent else ""
        if parent:
            found = self._search(owner, attr, "local")
        if found is not None:
            return found
        container = self._place(parent, depth + 1)
        if container is None:
            return None
        return container.element(attr) or container

    def _search(self, parent: str, attr: str, where: str) -> _Place | None:
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
                values = found.attribute_values if where == "self" else found.local_values
                expr = values.get(attr) if attr in table else None
                return _Place(found, line, expr)
        return None


@dataclass
class _Place:
    """Where a module was built: its line, and the expression that built it when known."""

    assignments: _Assignments
    line: int
    expr: ast.expr | None = None

    @property
    def path(self) -> str:
        return self.assignments.path

    @property
    def shown(self) -> str:
        return f"{shown_path(self.path)}:{self.line}"

    def _resolve(self, expr: ast.expr | None) -> ast.expr | None:
        """Follow local names to what they were assigned (``layers = [...]``), a few steps."""
        for _ in range(4):
            if isinstance(expr, ast.Name) and expr.id in self.assignments.local_values:
                expr = self.assignments.local_values[expr.id]
            else:
                break
        return expr

    def _at(self, expr: ast.expr) -> _Place:
        target = self._resolve(expr)
        # a name assigned in this class: the line of its assignment (its constructor call)
        line_of = target if target is not None and target is not expr else expr
        return _Place(self.assignments, self.assignments.start + line_of.lineno - 1, target)

    def element(self, attr: str) -> _Place | None:
        """The child ``attr`` (an index or a name) inside the container this place built."""
        expr = self._resolve(self.expr)
        if isinstance(expr, ast.Call):
            items = _call_items(expr, self._resolve)
        elif isinstance(expr, (ast.List, ast.Tuple, ast.Dict)):
            items = _literal_items(expr, self._resolve)
        else:
            return None
        if items is None:
            return None
        found = items.get(attr)
        return None if found is None else self._at(found)


def _literal_items(
    expr: ast.expr | None, resolve: Callable[[ast.expr | None], ast.expr | None]
) -> dict[str, ast.expr] | None:
    """``[a, b]`` -> {"0": a, "1": b}; ``{"up": a}`` / ``[("up", a)]`` -> {"up": a}; None when
    a starred or computed entry makes the positions unknown."""
    expr = resolve(expr)
    if isinstance(expr, (ast.List, ast.Tuple)):
        if any(isinstance(e, ast.Starred) for e in expr.elts):
            return None
        pairs = [_pair(e) for e in expr.elts]
        if expr.elts and all(p is not None for p in pairs):
            return dict(p for p in pairs if p is not None)
        return {str(i): e for i, e in enumerate(expr.elts)}
    if isinstance(expr, ast.Dict):
        keys = [k.value if isinstance(k, ast.Constant) else None for k in expr.keys]
        if not all(isinstance(k, str) for k in keys):
            return None
        return dict(zip(keys, expr.values, strict=True))
    if isinstance(expr, ast.Call):  # OrderedDict([...]), dict(up=...)
        name = _callee_name(expr)
        if name in ("OrderedDict", "dict"):
            items: dict[str, ast.expr] = {}
            if expr.args:
                found = _literal_items(expr.args[0], resolve)
                if found is None:
                    return None
                items.update(found)
            items.update({k.arg: k.value for k in expr.keywords if k.arg})
            return items
    return None


def _pair(expr: ast.expr) -> tuple[str, ast.expr] | None:
    if (
        isinstance(expr, ast.Tuple)
        and len(expr.elts) == 2
        and isinstance(expr.elts[0], ast.Constant)
        and isinstance(expr.elts[0].value, str)
    ):
        return expr.elts[0].value, expr.elts[1]
    return None


def _callee_name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _call_items(
    call: ast.Call, resolve: Callable[[ast.expr | None], ast.expr | None]
) -> dict[str, ast.expr] | None:
    """The children of ``nn.Sequential(a, b)``, ``nn.Sequential(*layers)``,
    ``nn.Sequential(OrderedDict(...))``, ``nn.ModuleList([a, b])``, ``nn.ModuleDict({...})``."""
    args = call.args
    if len(args) == 1 and isinstance(args[0], ast.Starred):
        return _literal_items(args[0].value, resolve)
    if _callee_name(call) in ("ModuleList", "ModuleDict", "ParameterList") or (
        len(args) == 1 and not isinstance(resolve(args[0]), ast.Call)
    ):
        return _literal_items(args[0], resolve) if args else None
    if len(args) == 1 and _callee_name(resolve(args[0])) in ("OrderedDict", "dict"):  # type: ignore[arg-type]
        return _literal_items(args[0], resolve)
    if any(isinstance(a, ast.Starred) for a in args):
        return None
    return {str(i): a for i, a in enumerate(args)}


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
    start: int = 1  # the file's line of the tree's line 1
    # the expressions assigned, first of each name: self.<name> = <expr>, <name> = <expr>
    attribute_values: dict[str, ast.expr] = field(default_factory=dict)
    local_values: dict[str, ast.expr] = field(default_factory=dict)


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


def _file_tree(path: str) -> ast.AST | None:
    """The parsed file (not cached: read once per load, for the root's call)."""
    import linecache

    try:
        if os.path.getsize(path) > 4_000_000:
            return None
        return ast.parse("".join(linecache.getlines(path)))
    except (OSError, SyntaxError, ValueError, RecursionError):
        return None


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
    values: dict[str, tuple[int, ast.expr]] = {}
    local_values: dict[str, tuple[int, ast.expr]] = {}
    dynamic: int | None = None
    for node in ast.walk(tree):
        names: list[str] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            names = [n for n in map(_self_attribute, node.targets) if n]
            value = node.value
            for target in node.targets:
                if isinstance(target, ast.Name):
                    _first(local_values, target.id, node.lineno, node.value)
            if isinstance(node.value, ast.Call):
                line = start + node.lineno - 1
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        local[target.id] = min(local.get(target.id, line), line)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            names = [n for n in [_self_attribute(node.target)] if n]
            value = node.value if isinstance(node, ast.AnnAssign) else None
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
                value = args[1] if len(args) > 1 else None
            else:
                line = start + node.lineno - 1
                dynamic = line if dynamic is None else min(dynamic, line)
        for name in names:
            line = start + node.lineno - 1
            found[name] = min(found.get(name, line), line)
            if value is not None:
                _first(values, name, node.lineno, value)
    return _Assignments(
        path,
        found,
        local,
        dynamic,
        start,
        {k: v for k, (_, v) in values.items()},
        {k: v for k, (_, v) in local_values.items()},
    )


def _first(table: dict[str, tuple[int, ast.expr]], name: str, line: int, value: ast.expr) -> None:
    if name not in table or line < table[name][0]:
        table[name] = (line, value)
