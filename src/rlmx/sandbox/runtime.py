"""The REPL inside the sandbox worker: the namespace and the cell runner.

The semantics are those of :class:`~rlmx.sandbox.inprocess.InProcessRepl`: printed output
captured (head and tail kept; ``sys.stdout`` and ``sys.stderr`` too), a trailing expression
echoed, the cell's own traceback only, ``FINAL`` / ``FINAL_VAR`` / ``SHOW_VARS``.
``llm_query``, ``llm_query_batched`` and ``rlm_query`` go to the host through the worker's
channel, from any thread.

Per-cell limits are interval timers (:mod:`rlmx.sandbox.timers`), paused while a sub-call
waits on the host. Standard library only: the worker imports it under ``python -S``.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rlmx.sandbox.capture import OutputCapture
from rlmx.sandbox.cells import (
    FinalSignal,
    builtins_keeper,
    cell_error,
    error_type,
    exec_cell,
    final_var_value,
    is_hidden,
    show_vars_lines,
)
from rlmx.sandbox.timers import CellTimeout, Timers

if TYPE_CHECKING:
    from typing import Any, Protocol

    class Calls(Protocol):
        def call(self, fn: str, args: dict[str, Any]) -> Any: ...

        def send(self, message: dict[str, Any]) -> None: ...


# Bound at import: FINAL, variable reads and sub-call answers are text even after a cell rebinds
# ``builtins.str`` or ``isinstance`` (the builtins are put back only when the cell ends).
_str, _is_a = str, isinstance


def _text(value: object) -> str:
    text: Any = value if _is_a(value, _str) else _str(value)
    return text if _is_a(text, _str) else ""


_BUILTIN_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (TypeError, ValueError, KeyError, RuntimeError, TimeoutError, MemoryError)
}


_error_classes: dict[str, type[Exception]] = {}


def host_error(name: str, message: str) -> Exception:
    """The exception a failed sub-call raises in the cell, named as on the host."""
    if name in _BUILTIN_ERRORS:
        return _BUILTIN_ERRORS[name](message)
    if not name.isidentifier() or len(name) > 80:
        name = "SubCallError"
    cls = _error_classes.get(name)
    if cls is None:
        cls = type(name, (RuntimeError,), {"__module__": "builtins"})
        _error_classes[name] = cls
    return cls(message)


class Stream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` inside the worker: into the running cell's capture."""

    encoding = "utf-8"

    def __init__(self, repl: Repl) -> None:
        super().__init__()
        self._repl = repl

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        cell = self._repl.cell
        if cell is not None:
            cell.write(text)
        return len(text)

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class Repl:
    """The namespace and the cell runner, as in the in-process REPL."""

    def __init__(
        self,
        context: object,
        channel: Calls,
        timers: Timers,
        capture_chars: int,
        helpers: dict[str, Any] | None = None,
    ) -> None:
        self.channel = channel
        self.timers = timers
        self.capture_chars = capture_chars
        self.cell: OutputCapture | None = None
        self.final: str | None = None
        self.counter = 0
        self._context = context
        self._reserve: bytearray | None = bytearray(4 << 20)
        self.namespace: dict[str, Any] = {
            "__name__": "__rlm__",
            "__builtins__": __builtins__,
            "re": re,
            "context": context,
            "llm_query": self._llm_query,
            "llm_query_batched": self._llm_query_batched,
            "llm_map": self._llm_map,
            "rlm_query": self._rlm_query,
            "FINAL": self._final,
            "FINAL_VAR": self._final_var,
            "SHOW_VARS": self._show_vars,
            "print": self._print,
            **(helpers or {}),
        }
        self._helpers = dict(helpers or {})
        self._restore_builtins = builtins_keeper()

    # The REPL API ----------------------------------------------------------------------------

    def _print(
        self, *args: object, sep: str | None = " ", end: str | None = "\n", **_: Any
    ) -> None:
        text = (" " if sep is None else sep).join(str(a) for a in args)
        text += "\n" if end is None else end
        if self.cell is not None:
            self.cell.write(text)

    def _final(self, value: object) -> None:
        if self.cell is None:
            raise RuntimeError("no cell is running")
        self.final = _text(value)
        raise FinalSignal

    def _final_var(self, name: object) -> None:
        self._final(final_var_value(self.namespace, name))

    def _show_vars(self) -> None:
        for line in show_vars_lines(self.namespace, self._helpers):
            self._print(line)

    def _hidden(self, name: str) -> bool:
        return is_hidden(name, self.namespace, self._helpers)

    def _call(self, fn: str, args: dict[str, Any]) -> Any:
        main = threading.current_thread() is threading.main_thread()
        if main:
            self.timers.shield += 1
        self.timers.waiting(+1)
        try:
            return self.channel.call(fn, args)
        finally:
            self.timers.waiting(-1)
            if main:
                self.timers.shield -= 1
                pending = self.timers.pending
                if pending is not None and self.timers.active and not self.timers.shield:
                    raise CellTimeout(self.timers.message(pending))

    def _llm_query(self, prompt: str, model: str | None = None) -> str:
        if not isinstance(prompt, str):
            raise TypeError(f"llm_query takes a str prompt, got {type(prompt).__name__}")
        _check_model(model)
        return _text(self._call("llm_query", {"prompt": prompt, "model": model}))

    def _llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        if isinstance(prompts, str):
            raise TypeError("llm_query_batched takes a list of prompts, not one string")
        prompts = list(prompts)
        for prompt in prompts:
            if not isinstance(prompt, str):
                raise TypeError(f"llm_query takes a str prompt, got {type(prompt).__name__}")
        _check_model(model)
        answers = self._call("llm_query_batched", {"prompts": prompts, "model": model})
        return [_text(a) for a in answers] if isinstance(answers, list) else []

    def _llm_map(
        self,
        instruction: str,
        items: Sequence[object],
        labels: Sequence[str] | None = None,
        model: str | None = None,
        examples: Sequence[Sequence[str]] | None = None,
    ) -> list[str | None]:
        if not isinstance(instruction, str):
            raise TypeError("llm_map(instruction, items, labels=None): instruction must be a str")
        if isinstance(items, str):
            raise TypeError("llm_map takes a list of items, not one text: split it first")
        # Lines, chunks, records or search hits: each goes as its text.
        texts = [i if isinstance(i, str) else str(getattr(i, "text", i)) for i in items]
        sent_labels = None if labels is None else [str(label) for label in labels]
        if isinstance(labels, str):
            raise TypeError('labels must be a list of texts, e.g. ["positive", "negative"]')
        sent_examples = None
        if examples is not None:
            sent_examples = [[str(a), str(b)] for a, b in examples]
        _check_model(model)
        answers = self._call(
            "llm_map",
            {
                "instruction": instruction,
                "items": texts,
                "labels": sent_labels,
                "model": model,
                "examples": sent_examples,
            },
        )
        if not isinstance(answers, list):
            return []
        return [None if a is None else _text(a) for a in answers]

    def _rlm_query(self, prompt: str, context: object = None) -> str:
        if not isinstance(prompt, str):
            raise TypeError(f"rlm_query takes a str prompt, got {type(prompt).__name__}")
        sent: object
        if context is None or isinstance(context, str):
            sent = context
        elif context is self._context:
            sent = {"ref": "context"}  # the session's own context: the host has it already
        elif isinstance(context, list | tuple) and all(isinstance(p, str) for p in context):
            sent = list(context)
        else:
            raise TypeError("rlm_query context must be a str or a list of str")
        return _text(self._call("rlm_query", {"prompt": prompt, "context": sent}))

    # Running cells ---------------------------------------------------------------------------

    def run(self, code: str) -> dict[str, Any]:
        self.counter += 1
        cell = OutputCapture(self.capture_chars)
        self.cell, self.final = cell, None
        filename = f"<cell {self.counter}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        started = time.perf_counter()
        raised: BaseException | None = None
        try:
            try:
                self.timers.arm()
                exec_cell(code, filename, self.namespace, cell.write)
            finally:
                self.timers.disarm()
        except BaseException as exc:  # the model's own: KeyboardInterrupt, CellTimeout, ...
            raised = exc
        finally:
            self.timers.disarm()  # again: a timer may have fired inside the first disarm
            self._restore_builtins()  # before a traceback is formatted with them
            self.cell = None
        output, truncated = cell.getvalue()
        return {
            "output": output,
            "error": None if raised is None else cell_error(raised, filename),
            "error_type": None if raised is None else error_type(raised),
            "final": self.final,
            "truncated": truncated,
            "duration": time.perf_counter() - started,
        }

    def variable(self, name: object) -> str | None:
        """A variable as text (``FINAL_VAR`` written outside a cell), converted under the same
        timers as a cell: a model-defined ``__str__`` may loop or sleep."""
        if not isinstance(name, str) or name not in self.namespace or self._hidden(name):
            return None
        value = self.namespace[name]
        if isinstance(value, str):
            return value
        try:
            try:
                self.timers.arm()
                return _text(value)
            finally:
                self.timers.disarm()
        except BaseException:  # a failing or overrunning __str__: no usable value
            return None
        finally:
            self.timers.disarm()
            self._restore_builtins()

    def reply(self, message: dict[str, Any]) -> None:
        """Send a frame, freeing the memory reserve if the model's data left no room for it."""
        try:
            self.channel.send(message)
        except MemoryError:
            self._reserve = None
            if "output" in message:
                message = {**message, "output": message["output"][-2_000:], "truncated": True}
            self.channel.send(message)
        if self._reserve is None:
            with contextlib.suppress(MemoryError):
                self._reserve = bytearray(4 << 20)


def _check_model(model: object) -> None:
    if model is not None and not isinstance(model, str):
        raise TypeError(f"model must be a str or None, got {type(model).__name__}")
