"""Reading an auditor's answer about a package, and scoring it against the package's findings.

Answers are read leniently in form and strictly in content. A function is given as
``path:function`` (``request.py:URLopener.open``, ``urllib/request.py::open``), as ``path:line``
(``request.py:1765``, read as the function holding that line, as ``search_files`` prints it),
or as the same inside JSON (a list of strings, of ``{"path": ..., "function": ...}`` objects,
or ``{path: [functions]}``). An import is ``a -> b``, ``a: b, c``, ``a imports b`` or JSON
(``{"a": ["b"]}``, ``[["a", "b"]]``), with modules named ``request``, ``request.py``,
``urllib.request`` or ``urllib/request.py``.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rlmx.demos.audit_truth import MODULE, ROOT, Edge, FunctionKey, Module, Package

# A path (``request.py``, ``urllib/request.py``, ``urllib.request``), a separator (``:``,
# ``::``, ``, line``), and a function's name or a line number.
_PLACE = re.compile(
    r"(?P<path>[\w./\\-]+)\s*(?:::?|,?\s+line\b|#L)\s*(?:line\s*)?(?P<ref>\d+|[A-Za-z_<][\w.<>]*)"
)
# A place whose path is a Python file, read first: in "are: request.py:f" the looser pattern
# takes "are" for the path and the file's name for the function.
_PY_PLACE = re.compile(_PLACE.pattern.replace(r"(?P<path>[\w./\\-]+)", r"(?P<path>[\w./\\-]+\.py)"))
_EDGE = re.compile(r"^\s*(?P<src>[\w./\\-]+)\s*(?:->|→|=>|-->|\bimports?\b:?|:)\s*(?P<dst>.+)$")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_QUOTES = "`'\"[](){}"


@dataclass(frozen=True, slots=True)
class Score:
    """What an answer got right: the sets compared and their precision and recall."""

    expected: frozenset[str]
    predicted: frozenset[str]

    @property
    def matched(self) -> frozenset[str]:
        return self.expected & self.predicted

    @property
    def precision(self) -> float:
        if not self.predicted:
            return 1.0 if not self.expected else 0.0
        return len(self.matched) / len(self.predicted)

    @property
    def recall(self) -> float:
        return len(self.matched) / len(self.expected) if self.expected else 1.0

    def passed(self, threshold: float = 0.8) -> bool:
        return self.precision >= threshold and self.recall >= threshold

    def detail(self, shown: int = 3) -> str:
        """``precision 0.83 (5 of 6), recall 0.71 (5 of 7); missed a, b; wrong c``."""
        line = (
            f"precision {self.precision:.2f} ({len(self.matched)} of {len(self.predicted)}), "
            f"recall {self.recall:.2f} ({len(self.matched)} of {len(self.expected)})"
        )
        missed = sorted(self.expected - self.predicted)
        wrong = sorted(self.predicted - self.expected)
        if missed:
            line += f"; missed {_some(missed, shown)}"
        if wrong:
            line += f"; wrong {_some(wrong, shown)}"
        return line


def _some(names: list[str], shown: int) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def score(expected: Iterable[str], predicted: Iterable[str]) -> Score:
    return Score(frozenset(expected), frozenset(predicted))


def function_label(key: FunctionKey) -> str:
    return f"{key[0]}:{key[1]}"


def edge_label(edge: Edge) -> str:
    return f"{edge[0]} -> {edge[1]}"


# Functions ------------------------------------------------------------------------------


def read_functions(answer: str, package: Package, prefer: frozenset[FunctionKey]) -> set[str]:
    """The functions an answer names, as ``path:qualname`` labels of the package's files.

    A ``path:line`` is the function holding the line; a bare method name (``open``) is the one
    of that file with the name, one of ``prefer`` (the findings) if several have it. A place in
    a file the package does not have is kept as given, so it counts as a wrong item.
    """
    found: set[str] = set()
    for line in _lines(answer):
        matches = list(_PY_PLACE.finditer(line)) or list(_PLACE.finditer(line))
        for match in matches:
            path, ref = match.group("path"), match.group("ref")
            module = find_module(path, package)
            if module is not None:
                found.add(function_label((module.path, _function(module, ref, prefer))))
            elif path.endswith(".py"):
                found.add(f"{path}:{ref}")
    return found


def _function(module: Module, ref: str, prefer: frozenset[FunctionKey]) -> str:
    if ref.isdigit():
        return module.function_at(int(ref))
    ref = ref.removesuffix("()").strip(".")
    names = [s.name for s in module.spans]
    if ref in names or ref == MODULE:
        return ref
    same = [n for n in names if n.endswith("." + ref)]
    preferred = [n for n in same if (module.path, n) in prefer]
    return (preferred or same or [ref])[0]


def find_module(text: str, package: Package) -> Module | None:
    """The package's module a path or dotted name means; None if it has none."""
    path = text.strip(_QUOTES).replace("\\", "/").removeprefix("./")
    if not path.endswith(".py"):
        path = path.replace(".", "/") + ".py"
    candidates = [m for m in package.modules if path == m.path or path.endswith("/" + m.path)]
    if path in (f"{package.name}.py", f"{package.name}/{ROOT}.py"):
        candidates = [m for m in package.modules if m.path == f"{ROOT}.py"]
    return max(candidates, key=lambda m: len(m.path), default=None)


# Imports --------------------------------------------------------------------------------


def read_edges(answer: str, package: Package) -> set[str]:
    """The imports an answer names, as ``importer -> imported`` labels. A module the package
    does not have (``socket``) is left out: naming outside imports too is not wrong."""
    found: set[str] = set()
    for line in _lines(answer):
        match = _EDGE.match(line)
        if match is None:
            continue
        source = find_module(match.group("src"), package)
        if source is None:
            continue
        for word in re.split(r"[,\s]+|\band\b", match.group("dst")):
            target = find_module(word, package) if word.strip(_QUOTES) else None
            if target is not None and target is not source:
                found.add(edge_label((source.name, target.name)))
    return found


# Shared ---------------------------------------------------------------------------------


def _lines(answer: str) -> list[str]:
    """The answer's lines, with JSON or a Python literal first flattened to ``a: b`` lines."""
    value = _literal(answer.strip())
    text = "\n".join(_flatten(value)) if value is not None else answer
    return [_BULLET.sub("", line).strip() for line in text.splitlines() if line.strip()]


def _literal(text: str) -> Any:
    if not text or text[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _flatten(value: Any, *, top: bool = True) -> list[str]:
    """``["a:b"]``, ``[["a", "b"]]``, ``[{"path": a, "function": b}]``, ``{a: [b, c]}``: lines
    ``a: b`` each. A pair is a list of two inside the list, never the answer itself."""
    if isinstance(value, dict):
        keys = {str(k).lower(): v for k, v in value.items()}
        path = keys.get("path") or keys.get("file") or keys.get("module")
        ref = keys.get("function") or keys.get("name") or keys.get("line")
        if path is not None and ref is not None:
            return [f"{path}:{ref}"]
        return [f"{k}: {v}" for k, vs in value.items() for v in _as_list(vs)]
    if isinstance(value, list | tuple):
        if not top and len(value) == 2 and all(isinstance(v, str | int) for v in value):
            return [f"{value[0]}: {value[1]}"]
        return [line for v in value for line in _flatten(v, top=False)]
    return [str(value)]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set) else [value]
