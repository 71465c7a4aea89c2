"""What an auditor's questions should find in a Python package, computed from its syntax trees.

Four findings, each defined so that it can be checked by hand:

- **unclosed**: a call that opens a file or socket (:data:`OPENERS`) whose result is neither
  used by a ``with``, nor closed, returned or stored on an object in the same function. A
  value returned or kept in an attribute belongs to someone else (the caller, the object's
  ``close``), which an auditor accepts; ``json.load(open(p))`` is the leak being looked for.
- **bare_except**: a function (or the module's top level) with an ``except:`` clause.
- **undocumented**: a public function without a docstring: a module-level function or a method
  of a module-level class, neither name starting with ``_``, in a module whose name does not
  start with ``_`` (``__init__.py`` counts as public).
- **imports**: the package's modules that import one another, as (importer, imported) edges
  between module names relative to the package (``client``, ``mime.text``, ``__init__``).

A function is named by its qualified name within its file (``HTTPConnection.connect``,
``outer.inner``); the top level of a module is ``<module>``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

MODULE = "<module>"
ROOT = "__init__"
OPENERS = frozenset(
    {
        "open",
        "io.open",
        "builtins.open",
        "os.fdopen",
        "socket.socket",
        "socket.create_connection",
        "tempfile.TemporaryFile",
        "tempfile.NamedTemporaryFile",
        "urlopen",
        "urllib.request.urlopen",
    }
)

FunctionKey = tuple[str, str]  # (path relative to the package, qualified name)
Edge = tuple[str, str]  # (importer, imported), module names relative to the package

_Def = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, slots=True)
class Span:
    """One function's lines, both included, and its qualified name."""

    start: int
    end: int
    name: str


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed file: its path relative to the package, its module name, its tree, and the
    spans of every function in it (for reading ``path:line`` answers)."""

    path: str
    name: str
    tree: ast.Module
    spans: tuple[Span, ...]

    def function_at(self, line: int) -> str:
        """The innermost function whose lines hold ``line``, or ``<module>``."""
        inside = [s for s in self.spans if s.start <= line <= s.end]
        return min(inside, key=lambda s: s.end - s.start).name if inside else MODULE


@dataclass(frozen=True, slots=True)
class Truth:
    """The four findings of one package."""

    unclosed: frozenset[FunctionKey]
    bare_except: frozenset[FunctionKey]
    undocumented: frozenset[FunctionKey]
    imports: frozenset[Edge]


def module_name(path: str) -> str:
    """``mime/text.py`` -> ``mime.text``, ``mime/__init__.py`` -> ``mime``; the package's own
    ``__init__.py`` is ``__init__``."""
    stem = path.removesuffix(".py").replace("/", ".")
    if stem == ROOT:
        return ROOT
    return stem.removesuffix("." + ROOT)


@dataclass(frozen=True, slots=True)
class Package:
    """A package's import name (its directory's name) and its parsed modules."""

    name: str
    modules: tuple[Module, ...]


def load_package(root: Path) -> Package:
    """Every ``.py`` file under ``root`` that parses, in path order."""
    modules = []
    for file in sorted(root.rglob("*.py")):
        path = file.relative_to(root).as_posix()
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=path)
        except (SyntaxError, UnicodeDecodeError):
            continue
        modules.append(Module(path, module_name(path), tree, tuple(_spans(tree, ""))))
    return Package(root.name, tuple(modules))


def _spans(node: ast.AST, prefix: str) -> list[Span]:
    found: list[Span] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _Def):
            name = prefix + child.name
            found.append(Span(child.lineno, child.end_lineno or child.lineno, name))
            found.extend(_spans(child, name + "."))
        elif isinstance(child, ast.ClassDef):
            found.extend(_spans(child, prefix + child.name + "."))
        else:
            found.extend(_spans(child, prefix))
    return found


def compute_truth(root: Path) -> Truth:
    """The four findings of the package at ``root``."""
    package = load_package(root)
    modules = package.modules
    return Truth(
        unclosed=frozenset(k for m in modules for k in _unclosed(m)),
        bare_except=frozenset(k for m in modules for k in _bare_excepts(m)),
        undocumented=frozenset(k for m in modules for k in _undocumented(m)),
        imports=import_edges(package),
    )


def _bare_excepts(module: Module) -> set[FunctionKey]:
    return {
        (module.path, module.function_at(node.lineno))
        for node in ast.walk(module.tree)
        if isinstance(node, ast.ExceptHandler) and node.type is None
    }


def _undocumented(module: Module) -> set[FunctionKey]:
    if Path(module.path).name.startswith("_") and not module.path.endswith("__init__.py"):
        return set()
    found: set[FunctionKey] = set()
    for node in module.tree.body:
        if isinstance(node, _Def) and _public_without_doc(node):
            found.add((module.path, node.name))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            found.update(
                (module.path, f"{node.name}.{item.name}")
                for item in node.body
                if isinstance(item, _Def) and _public_without_doc(item)
            )
    return found


def _public_without_doc(node: _Def) -> bool:
    return not node.name.startswith("_") and ast.get_docstring(node) is None


def dotted(node: ast.expr) -> str | None:
    """``socket.socket`` for that attribute chain, ``open`` for a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _unclosed(module: Module) -> set[FunctionKey]:
    found: set[FunctionKey] = set()
    for scope in _scopes(module.tree):
        parents = _parents(scope)
        for node in _own_nodes(scope):
            if not isinstance(node, ast.Call) or dotted(node.func) not in OPENERS:
                continue
            if not _kept(node, parents, scope, frozenset()):
                found.add((module.path, module.function_at(node.lineno)))
    return found


def _scopes(tree: ast.Module) -> list[ast.AST]:
    return [tree, *(n for n in ast.walk(tree) if isinstance(n, _Def | ast.Lambda))]


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """The nodes of ``scope`` outside the functions nested in it (each is its own scope)."""
    found: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        found.append(node)
        if not isinstance(node, _Def | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ClassDef):
            stack.extend(n for n in node.body if not isinstance(n, _Def))
    return found


def _parents(scope: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(scope) for child in ast.iter_child_nodes(node)}


# Expressions a value passes through unchanged on its way to where it is used.
_TRANSPARENT = (ast.IfExp, ast.BoolOp, ast.Await, ast.keyword)


def _kept(node: ast.AST, parents: dict[int, ast.AST], scope: ast.AST, seen: frozenset[str]) -> bool:
    """Is the value of ``node`` with'd, returned, stored on an object, or closed in ``scope``?

    A value handed to a call is followed to that call's result: ``Response(open(p))``
    returned or stored hands the file to the response; ``json.load(open(p))`` leaks it. A
    value bound to a variable is followed through that variable's uses.
    """
    parent = parents.get(id(node))
    while parent is not None and (isinstance(parent, _TRANSPARENT) or _is_argument(node, parent)):
        node, parent = parent, parents.get(id(parent))
    if _inside_with_item(node, parents):
        return True
    if isinstance(parent, ast.Return | ast.Yield | ast.YieldFrom):
        return True
    if isinstance(parent, ast.Assign | ast.AnnAssign):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return any(_target_kept(t, parents, scope, seen) for t in targets)
    return False


def _is_argument(node: ast.AST, parent: ast.AST) -> bool:
    return isinstance(parent, ast.Call) and node is not parent.func


def _inside_with_item(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    # with closing(socket.socket()) as s: the wrapper closes it.
    current = parents.get(id(node))
    while current is not None and not isinstance(current, ast.stmt):
        if isinstance(current, ast.withitem):
            return True
        current = parents.get(id(current))
    return False


def _target_kept(
    target: ast.expr, parents: dict[int, ast.AST], scope: ast.AST, seen: frozenset[str]
) -> bool:
    if isinstance(target, ast.Attribute | ast.Subscript):
        return True  # kept by an object: its owner closes it
    if isinstance(target, ast.Name) and target.id not in seen:
        return _name_kept(target.id, parents, scope, seen | {target.id})
    return False


def _name_kept(
    name: str, parents: dict[int, ast.AST], scope: ast.AST, seen: frozenset[str]
) -> bool:
    """Is the variable ``name`` closed in ``scope``, or one of its uses kept (see _kept)?"""
    for node in _own_nodes(scope):
        if _is_close_of(node, name):
            return True
        loaded = isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)
        if loaded and _kept(node, parents, scope, seen):
            return True
    return False


def _is_close_of(node: ast.AST, name: str) -> bool:
    """Is ``node`` the call ``name.close()``?"""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    return node.func.attr == "close" and _is_name(node.func.value, name)


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def import_edges(package: Package) -> frozenset[Edge]:
    """(importer, imported) for every import of one of the package's modules by another.

    Imports inside functions count (an auditor's dependency map includes the lazy ones).
    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module of the package,
    else to ``pkg``; ``import pkg.a.b`` is an edge to ``pkg.a.b`` alone, not to the packages it
    passes through.
    """
    names = {m.name for m in package.modules}
    edges: set[Edge] = set()
    for module in package.modules:
        for node in ast.walk(module.tree):
            for target in _imported(node, module, package.name, names):
                if target != module.name:
                    edges.add((module.name, target))
    return frozenset(edges)


def _imported(node: ast.AST, module: Module, package: str, names: set[str]) -> list[str]:
    """The package's modules that one import statement imports."""
    if isinstance(node, ast.Import):
        parts = [_relative(a.name, package) for a in node.names]
        return [m for p in parts if p is not None and (m := _as_module(p, names))]
    if not isinstance(node, ast.ImportFrom):
        return []
    origin = _from_origin(node, module, package)
    if origin is None:
        return []
    found = []
    for alias in node.names:
        target = _as_module((*origin, alias.name), names) or _as_module(origin, names)
        if target:
            found.append(target)
    return found


def _from_origin(node: ast.ImportFrom, module: Module, package: str) -> tuple[str, ...] | None:
    """Where ``from X import ...`` imports from, as parts relative to the package root."""
    named = tuple(node.module.split(".")) if node.module else ()
    if not node.level:
        return _relative(node.module or "", package)
    # A relative import counts from the module's own package (the folder it is in).
    base = tuple(module.path.split("/")[:-1])
    if node.level > len(base) + 1:
        return None  # above the package: outside what was shipped
    return base[: len(base) - (node.level - 1)] + named


def _relative(dotted_name: str, package: str) -> tuple[str, ...] | None:
    """``email.mime.text`` -> (mime, text) inside package ``email``; None outside it."""
    parts = tuple(dotted_name.split("."))
    return parts[1:] if parts[0] == package else None


def _as_module(parts: tuple[str, ...], names: set[str]) -> str:
    """The module these parts name ("" when they name none); the root is ``__init__``."""
    name = ".".join(parts) or ROOT
    return name if name in names else ""
