"""``rlmx demo run audit``: an auditor's questions about a real codebase.

The context is the ``urllib`` package of the Python 3.11 standard library (six modules, 4,453
lines, shipped in ``data/audit`` with the Python licence), read as a directory through
``list_files``, ``read_file`` and ``search_files``. Four questions an auditor asks of code it
did not write: which functions leak a file or socket, which swallow every exception with a bare
``except:``, which public functions lack a docstring, and which modules import which. Every
expected finding is computed from the package's syntax trees when the answer is checked
(:mod:`rlmx.demos.audit_truth` says exactly what counts), and an answer passes with precision
and recall of at least 0.8 against it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rlmx.bench.datafiles import data_dir, need
from rlmx.demos.audit_answers import (
    Score,
    edge_label,
    function_label,
    read_edges,
    read_functions,
    score,
)
from rlmx.demos.audit_truth import Package, Truth, compute_truth, load_package
from rlmx.demos.base import Check, DemoQuestion, Level, Prepared

PACKAGE = "urllib"
THRESHOLD = 0.8
MAX_ITERATIONS = 8
LEVELS: tuple[Level, ...] = ("code", "dsl")

# Asked as an auditor would, naming no tool: the directory's helpers (``functions()``,
# ``imports()``, ``search_files``) are the model's to pick.
_ASKED = (
    (
        "unclosed",
        "List every function that opens a file or a socket (open, socket.socket, "
        "socket.create_connection, urlopen) and does not close it: not in a `with`, not "
        "closed, not returned and not stored on an object in the same function. Answer as "
        "path:function, one per line.",
    ),
    (
        "bare-except",
        "List every function that has a bare `except:` clause, as path:function, one per line.",
    ),
    (
        "undocumented",
        "List every public function and method (its name and its class's name not starting "
        "with _) that has no docstring, as path:function (Class.method for a method), one "
        "per line.",
    ),
    (
        "imports",
        "Which modules of this package import which other modules of this package? Answer "
        "one line per import, as importer -> imported.",
    ),
)
# Each question at the code level, then at the command level (its name ending in -dsl).
QUESTIONS = tuple(
    DemoQuestion(
        name=name if level == "code" else f"{name}-{level}",
        query=query,
        level=level,
        max_iterations=MAX_ITERATIONS,
    )
    for level in LEVELS
    for name, query in _ASKED
)


def expected_labels(truth: Truth) -> dict[str, list[str]]:
    """Each question's findings as the labels an answer is compared with, sorted."""
    return {
        "unclosed": sorted(function_label(k) for k in truth.unclosed),
        "bare-except": sorted(function_label(k) for k in truth.bare_except),
        "undocumented": sorted(function_label(k) for k in truth.undocumented),
        "imports": sorted(edge_label(e) for e in truth.imports),
    }


def _reader(name: str, truth: Truth) -> Callable[[str, Package], set[str]]:
    """How the answer to question ``name`` is read into labels."""
    if name == "imports":
        return read_edges
    prefer = {
        "unclosed": truth.unclosed,
        "bare-except": truth.bare_except,
        "undocumented": truth.undocumented,
    }[name]
    return lambda answer, package: read_functions(answer, package, prefer)


def check_answer(root: Path, question: str, answer: str | None) -> tuple[Score, Check]:
    """Score an answer to ``question`` about the package at ``root``, against findings
    computed from its syntax trees now (never stored, never from a model)."""
    package = load_package(root)
    truth = compute_truth(root)
    expected = expected_labels(truth)[question]
    predicted = _reader(question, truth)(answer or "", package)
    result = score(expected, predicted)
    passed = answer is not None and result.passed(THRESHOLD)
    # The lower of the two is the score: an answer is as good as its weaker side.
    check = Check(question, passed, result.detail(), min(result.precision, result.recall))
    return result, check


@dataclass(frozen=True, slots=True)
class AuditDemo:
    """The audit demo: the shipped package copied to the working folder, and its questions."""

    name: str = "audit"
    summary: str = (
        "An auditor's questions about Python's urllib package: leaked files and sockets, bare "
        "excepts, undocumented public functions, module imports"
    )
    source: str = (
        "urllib from CPython 3.11.2 (Debian 12 libpython3.11-minimal 3.11.2-6+deb12u6), "
        "unchanged, under the Python Software Foundation License (data/audit)"
    )

    def prepare(self, workdir: Path, *, seed: int) -> Prepared:
        """Copy the package (fixed data: ``seed`` changes nothing) and compute its findings."""
        shipped = need(data_dir() / "audit")
        target = workdir / PACKAGE
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(need(shipped / PACKAGE), target)
        for name in ("SOURCE.txt", "LICENSE.txt"):
            shutil.copy2(need(shipped / name), workdir / name)
        labels = expected_labels(compute_truth(target))
        files = sorted(target.rglob("*.py"))
        lines = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files)
        return Prepared(
            context=target,
            questions=QUESTIONS,
            expected={q.name: labels[q.name.removesuffix("-dsl")] for q in QUESTIONS},
            notes=(f"{PACKAGE}: {len(files)} modules, {lines:,} lines, {self.source}",),
        )

    def check(self, prepared: Prepared, question: DemoQuestion, answer: str | None) -> Check:
        root = prepared.context
        if not isinstance(root, Path) or not root.is_dir():
            return Check(question.name, False, "the context is not the package's directory")
        return check_answer(root, question.name.removesuffix("-dsl"), answer)[1]


DEMO = AuditDemo()
