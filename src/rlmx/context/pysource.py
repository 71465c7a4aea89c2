"""An index of the Python files of a directory context: their functions and their imports.

Questions about a codebase ("which public functions have no docstring", "which modules import
which", "every function that catches a bare except") are about definitions, not lines: a
regex finds ``def`` lines but not where a function ends, whether its first statement is a
docstring, or which module ``from . import x`` means. A small model that writes the ``ast``
walk itself gets it wrong in the usual ways (``ast.parse(context)`` on a directory, methods
named without their class); these records give it the parsed facts to filter in code.
Standard library only: the sandbox worker imports this module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch

from rlmx.context.corpus import Corpus, iter_blocks

PYTHON_GLOB = "*.py"
MODULE_LEVEL = "<module>"


@dataclass(frozen=True, slots=True)
class Function:
    """One function or method: ``name`` is qualified within its file (``Class.method``,
    ``outer.inner``); ``public`` when it is not inside a function and no part of its name, nor
    the module's name, starts with ``_`` (``__init__.py`` is public); ``doc`` is the
    docstring's first line ('' without one); ``text`` its source lines."""

    path: str
    name: str
    line: int
    end: int
    public: bool
    doc: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.name}"

    __repr__ = __str__


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module: ``module`` as written, relative imports resolved against the
    file's folder (``from .parse import x`` in ``request.py`` is ``parse``); ``local`` is the
    context's file that module is (``parse.py``), or '' when it is not one of them."""

    path: str
    line: int
    module: str
    local: str

    def __str__(self) -> str:
        return f"{self.path} -> {self.local or self.module}"

    __repr__ = __str__


def _python_docs(corpus: Corpus, glob: str) -> Iterator[tuple[str, ast.Module, list[str]]]:
    if corpus.kind != "directory":
        raise ValueError("functions() and imports() read the Python files of a directory")
    for i, doc in enumerate(corpus.docs):
        name = doc.name or ""
        if not (fnmatch(name, glob) or fnmatch(name.rsplit("/", 1)[-1], glob)):
            continue
        text = corpus.text(i)
        source = text if isinstance(text, str) else "".join(iter_blocks(text))
        try:
            tree = ast.parse(source, filename=name)
        except (SyntaxError, ValueError):
            continue  # not Python after all, or another version's: nothing to index
        yield name, tree, source.splitlines()


def functions(corpus: Corpus, glob: str = PYTHON_GLOB) -> list[Function]:
    """Every function and method of the context's Python files, in file and line order."""
    found: list[Function] = []
    for path, tree, lines in _python_docs(corpus, glob):
        stem = path.rsplit("/", 1)[-1].removesuffix(".py")
        module_public = stem == "__init__" or not stem.startswith("_")
        for qualified, node, nested in _definitions(tree.body, "", nested=False):
            end = node.end_lineno or node.lineno
            parts = qualified.split(".")
            found.append(
                Function(
                    path=path,
                    name=qualified,
                    line=node.lineno,
                    end=end,
                    public=module_public
                    and not nested
                    and not any(p.startswith("_") for p in parts),
                    doc=(ast.get_docstring(node) or "").strip().split("\n")[0],
                    text="\n".join(lines[node.lineno - 1 : end]),
                )
            )
    found.sort(key=lambda f: (f.path, f.line))
    return found


Definition = ast.FunctionDef | ast.AsyncFunctionDef


def _definitions(
    body: list[ast.stmt], prefix: str, *, nested: bool
) -> Iterator[tuple[str, Definition, bool]]:
    """Each definition with its qualified name, and whether it is inside a function (a nested
    function is nobody's API, whatever its name)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node, nested
            yield from _definitions(node.body, f"{prefix}{node.name}.", nested=True)
        elif isinstance(node, ast.ClassDef):
            yield from _definitions(node.body, f"{prefix}{node.name}.", nested=nested)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            # Definitions made conditionally (``if sys.platform ...:``, ``try: import``).
            for block in _blocks(node):
                yield from _definitions(block, prefix, nested=nested)


def _blocks(node: ast.If | ast.Try | ast.With) -> list[list[ast.stmt]]:
    if isinstance(node, ast.If):
        return [node.body, node.orelse]
    if isinstance(node, ast.Try):
        return [node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody]
    return [node.body]


def imports(corpus: Corpus, glob: str = PYTHON_GLOB) -> list[Import]:
    """Every module the context's Python files import, in file and line order."""
    files = {doc.name or "" for doc in corpus.docs}
    found: list[Import] = []
    for path, tree, _ in _python_docs(corpus, glob):
        folder = path.rsplit("/", 1)[0].split("/") if "/" in path else []
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for module in _modules(node, folder, path, files):
                found.append(Import(path, node.lineno, module, _local(module, path, files)))
    found.sort(key=lambda i: (i.path, i.line))
    return found


def _modules(
    node: ast.Import | ast.ImportFrom, folder: list[str], importer: str, files: set[str]
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        base = node.module or ""
    else:
        parent = folder[: len(folder) - (node.level - 1)] if node.level > 1 else list(folder)
        base = ".".join([*parent, *([node.module] if node.module else [])])
    # ``from pkg import a, b``: a name may be a module of the package, imported as such.
    submodules = [f"{base}.{a.name}" if base else a.name for a in node.names]
    found = [m for m in submodules if _local(m, importer, files)]
    return found if found or not base else [base]


def _local(module: str, importer: str, files: set[str]) -> str:
    """The file of the context that ``module`` names, trying the dotted name as a path and
    then without its leading packages (the context is often a package's own folder, so
    ``urllib.parse`` is its ``parse.py``)."""
    parts = [p for p in module.split(".") if p]
    for start in range(len(parts)):
        stem = "/".join(parts[start:])
        for candidate in (f"{stem}.py", f"{stem}/__init__.py"):
            if candidate in files and candidate != importer:
                return candidate
    return ""
