"""What running one cell means, shared by the worker's REPL and the in-process test double.

Standard library only, and ``_ast`` rather than ``ast``: the confined worker imports this
at start-up.
"""

from __future__ import annotations

import _ast
import traceback
from collections.abc import Callable, Iterator
from typing import Any

# The names the REPL defines for the model, which SHOW_VARS leaves out.
RESERVED = frozenset(
    {
        "context",
        "llm_query",
        "llm_query_batched",
        "llm_map",
        "rlm_query",
        "FINAL",
        "FINAL_VAR",
        "SHOW_VARS",
    }
)


def is_hidden(name: str, namespace: dict[str, Any], helpers: dict[str, Any]) -> bool:
    """For ``SHOW_VARS``: the REPL's own names, and a helper's name while the model has not
    reused it."""
    helper = helpers.get(name)
    return name in RESERVED or (helper is not None and namespace.get(name) is helper)


class FinalSignal(BaseException):
    """Ends a cell at ``FINAL``; a BaseException so model code's ``except Exception`` misses it."""


def final_var_value(namespace: dict[str, Any], name: object) -> object:
    """What ``FINAL_VAR(name)`` answers: the variable ``name``, or ``name`` itself when it is
    not a string (``FINAL_VAR(x)`` for ``FINAL_VAR("x")``)."""
    if isinstance(name, str):
        if name not in namespace:
            raise NameError(f"FINAL_VAR: no variable named {name!r}; call SHOW_VARS()")
        return namespace[name]
    return name


def show_vars_lines(namespace: dict[str, Any], helpers: dict[str, Any]) -> Iterator[str]:
    """What ``SHOW_VARS()`` prints, a line at a time: the model's own variables, by name."""
    names = [
        k
        for k in namespace
        if not k.startswith("_")
        and not is_hidden(k, namespace, helpers)
        and k not in {"re", "print"}
    ]
    if not names:
        yield "No variables yet."
    for name in sorted(names):
        yield f"{name}: {describe_value(namespace[name])}"


def describe_value(value: object) -> str:
    """``str, len 1,234`` for ``SHOW_VARS``."""
    size = f", len {len(value):,}" if hasattr(value, "__len__") else ""
    return f"{type(value).__name__}{size}"


def exec_cell(
    code: str, filename: str, namespace: dict[str, Any], echo: Callable[[str], object]
) -> None:
    """Run ``code`` in ``namespace``; a trailing expression is echoed as a notebook would, so
    ``len(context)`` shows a number."""
    tree = compile(code, filename, "exec", _ast.PyCF_ONLY_AST)
    assert isinstance(tree, _ast.Module)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, _ast.Expr):
        tree.body.pop()
    else:
        last = None
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        value = eval(compile(_ast.Expression(last.value), filename, "eval"), namespace)
        if value is not None:
            echo(repr(value) + "\n")


def builtins_keeper() -> Callable[[], None]:
    """A function that puts back every builtin a cell rebound or deleted (``builtins.len =
    ...``), made of references taken now. Model code shares the interpreter's builtins with the
    REPL's own machinery (tracebacks, the result frame, the next cell), which must not run on a
    cell's replacements; names a cell added are left alone."""
    import builtins

    table = vars(builtins)
    saved, get, missing = tuple(table.items()), table.get, object()

    def restore() -> None:
        for name, value in saved:
            if get(name, missing) is not value:
                table[name] = value

    return restore


def cell_error(exc: BaseException, filename: str) -> str | None:
    """What the model is told about the exception that ended its cell (None: ``FINAL``)."""
    if isinstance(exc, FinalSignal):
        return None
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(exc)).rstrip()
    return format_error(exc, filename)


def error_type(exc: BaseException) -> str | None:
    """The class name of the exception that ended a cell (None: ``FINAL``)."""
    return None if isinstance(exc, FinalSignal) else type(exc).__name__


def format_error(exc: BaseException, filename: str) -> str:
    """A traceback of the model's own frames only; the REPL's machinery is noise to the model."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = ["Traceback (most recent call last):"] if frames else []
    lines += [line.rstrip() for line in traceback.format_list(frames)]
    lines += [line.rstrip() for line in traceback.format_exception_only(exc)]
    return "\n".join(lines)
