"""Multiple-choice questions about a real code base: packages of the running Python's stdlib.

Task ``i`` is about package ``PACKAGES[i % 10]`` (``json``: ~12K tokens ... ``unittest``:
~230K tokens), and its context is that package's directory: the RLM reads it on demand through
the directory store (``list_files``, ``read_file``, ``search_files``), the baselines as one
``# file: <path>`` document per file. Facts come from
the tree's syntax trees (``ast``): where a function is defined, how many parameters it
declares, a class's first base, a parameter's default. Distractors are the same kind of fact
from elsewhere in the tree. The tree depends on the Python version, which each task records.
"""

from __future__ import annotations

import ast
import platform
import random
import sysconfig
from collections import Counter
from pathlib import Path

from rlmx.bench.tasks import Task

PACKAGES = (
    "json",
    "concurrent",
    "http",
    "urllib",
    "logging",
    "importlib",
    "email",
    "xml",
    "asyncio",
    "unittest",
)
LETTERS = "ABCD"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


Fact = tuple[str, str, list[str]]  # question, answer, distractor pool


Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _definitions(tree: Path) -> list[tuple[str, Def]]:
    """Every top-level function and class of every module in ``tree``, with its file."""
    found: list[tuple[str, Def]] = []
    for path in sorted(tree.rglob("*.py")):
        try:
            module = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        rel = path.relative_to(tree).as_posix()
        found.extend(
            (rel, node)
            for node in module.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        )
    return found


def _facts(tree: Path) -> dict[str, list[Fact]]:
    items = _definitions(tree)
    files = sorted({rel for rel, _ in items})
    names = Counter(node.name for _, node in items)
    facts: dict[str, list[Fact]] = {"defined_in": [], "params": [], "base": [], "default": []}
    bases = sorted(
        {ast.unparse(b) for _, n in items if isinstance(n, ast.ClassDef) for b in n.bases}
    )
    defaults = sorted(
        {
            ast.unparse(d)
            for _, n in items
            if not isinstance(n, ast.ClassDef)
            for d in n.args.defaults
            if isinstance(d, ast.Constant)
        }
    )
    for rel, node in items:
        if names[node.name] != 1 or node.name.startswith("_"):
            continue
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        q = f"In which file of this code base is the top-level {kind} `{node.name}` defined?"
        facts["defined_in"].append((q, rel, [f for f in files if f != rel]))
        if isinstance(node, ast.ClassDef):
            if node.bases:
                q = f"What is the first base class of class `{node.name}` (in `{rel}`)?"
                facts["base"].append((q, ast.unparse(node.bases[0]), bases))
            continue
        count = _param_count(node.args)
        q = (
            f"How many parameters does the function `{node.name}` in `{rel}` declare "
            "(count every name in its signature, including *args and **kwargs)?"
        )
        pool = [str(c) for c in range(max(0, count - 3), count + 5)]
        facts["params"].append((q, str(count), pool))
        positional = [*node.args.posonlyargs, *node.args.args]
        with_defaults = positional[len(positional) - len(node.args.defaults) :]
        for arg, default in zip(with_defaults, node.args.defaults, strict=True):
            if isinstance(default, ast.Constant):
                q = (
                    f"What is the default value of the parameter `{arg.arg}` of the function "
                    f"`{node.name}` in `{rel}`?"
                )
                facts["default"].append((q, ast.unparse(default), defaults))
    return facts


def _param_count(args: ast.arguments) -> int:
    count = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
    return count + (args.vararg is not None) + (args.kwarg is not None)


def _question(facts: dict[str, list[Fact]], rng: random.Random) -> tuple[str, str, list[str]]:
    kinds = [k for k, v in facts.items() if any(len(set(pool) - {ans}) >= 3 for _, ans, pool in v)]
    kind = rng.choice(kinds)
    usable = [f for f in facts[kind] if len(set(f[2]) - {f[1]}) >= 3]
    question, answer, pool = rng.choice(usable)
    options = [answer, *rng.sample(sorted(set(pool) - {answer}), 3)]
    rng.shuffle(options)
    return kind, question, options


def generate_codeqa(length: int, n: int, seed: int, root: Path) -> list[Task]:
    base = stdlib_root()
    tasks = []
    for index in range(n):
        package = PACKAGES[index % len(PACKAGES)]
        tree = base / package
        task_seed = seed * 1_000_003 + index
        rng = random.Random(task_seed)
        facts = _facts(tree)
        kind, question, options = _question(facts, rng)
        answer = next(q for q in facts[kind] if q[0] == question)[1]
        shown = "\n".join(f"{LETTERS[i]}) {opt}" for i, opt in enumerate(options))
        query = (
            f"The context is the source tree of Python's `{package}` package.\n{question}\n"
            f"{shown}\nAnswer with the letter of the correct option."
        )
        tasks.append(
            Task(
                task_set="codeqa",
                length=length,
                index=index,
                seed=task_seed,
                query=query,
                context=tree,
                gold=LETTERS[options.index(answer)],
                scorer="choice",
                meta={
                    "package": package,
                    "kind": kind,
                    "answer": answer,
                    "python": platform.python_version(),
                },
            )
        )
    return tasks
