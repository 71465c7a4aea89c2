"""An in-process REPL: model code runs with ``exec`` in this interpreter, unconfined.

For trusted data and tests only. Each cell runs in a daemon thread, so that a cell stuck in
a loop never keeps the process from exiting, and so that host functions can block on the
event loop while the cell waits for a sub-model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import linecache
import re
import threading
import time
from typing import Any

from rlmx.context import ContextInput, as_context, helpers
from rlmx.errors import SandboxError
from rlmx.sandbox.base import HostFunctions
from rlmx.sandbox.capture import OutputCapture
from rlmx.sandbox.cells import (
    FinalSignal,
    cell_error,
    error_type,
    exec_cell,
    final_var_value,
    is_hidden,
    show_vars_lines,
)
from rlmx.sandbox.scan_host import scan_route
from rlmx.sandbox.scans import HostScans
from rlmx.types import CellResult


class _Cell:
    """The state of one running cell: its output and its final answer."""

    def __init__(self, limit: int) -> None:
        self.capture = OutputCapture(limit)
        self.final: str | None = None

    def print(self, *args: object, sep: str | None = " ", end: str | None = "\n", **_: Any) -> None:
        text = (" " if sep is None else sep).join(str(a) for a in args)
        self.capture.write(text + ("\n" if end is None else end))


class InProcessRepl:
    """A persistent namespace with ``context`` and the REPL API bound to the host."""

    def __init__(self, *, capture_chars: int = 200_000) -> None:
        self._capture_chars = capture_chars
        self._namespace: dict[str, Any] = {}
        self._cell: _Cell | None = None
        self._counter = 0
        self._started = False
        self._helpers: dict[str, Any] = {}

    async def start(self, context: ContextInput, host: HostFunctions) -> None:
        opened = as_context(context)
        value, corpus = await asyncio.to_thread(opened.open_local)
        self._helpers = helpers.build(corpus)
        route = await asyncio.to_thread(scan_route, opened, host)
        if route is not None:  # the run's executor scans the files: ask it from the cell
            self._helpers.update(HostScans(corpus, route.answer).functions())

        def rlm_query(prompt: str, context: object = None) -> str:
            # The session's own context goes as the Context it came from, not its REPL value.
            sub = opened if context is value else context
            return host.rlm_query(prompt, sub)  # type: ignore[arg-type]

        self._namespace = {
            "__name__": "__rlm__",
            "__builtins__": __builtins__,
            "re": re,
            "context": value,
            **self._helpers,
            "llm_query": host.llm_query,
            "llm_query_batched": host.llm_query_batched,
            "llm_map": host.llm_map,
            "rlm_query": rlm_query,
            "FINAL": self._final,
            "FINAL_VAR": self._final_var,
            "SHOW_VARS": self._show_vars,
            "print": self._print,
        }
        self._started = True

    def _hidden(self, name: str) -> bool:
        return is_hidden(name, self._namespace, self._helpers)

    def _current(self) -> _Cell:
        if self._cell is None:
            raise RuntimeError("no cell is running")
        return self._cell

    def _print(self, *args: object, **kwargs: Any) -> None:
        self._current().print(*args, **kwargs)

    def _final(self, value: object) -> None:
        self._current().final = value if isinstance(value, str) else str(value)
        raise FinalSignal

    def _final_var(self, name: object) -> None:
        self._final(final_var_value(self._namespace, name))

    def _show_vars(self) -> None:
        for line in show_vars_lines(self._namespace, self._helpers):
            self._print(line)

    async def execute(self, code: str) -> CellResult:
        if not self._started:
            raise SandboxError("the REPL was used before start()")
        self._counter += 1
        future: concurrent.futures.Future[CellResult] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._run_into,
            args=(code, future),
            name=f"rlmx-cell-{self._counter}",
            daemon=True,
        )
        thread.start()
        return await asyncio.wrap_future(future)

    def _run_into(self, code: str, future: concurrent.futures.Future[CellResult]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(self._run(code))
        except BaseException as exc:  # a bug here must still resolve the future
            future.set_exception(SandboxError(f"the REPL failed: {exc!r}"))

    def _run(self, code: str) -> CellResult:
        cell = _Cell(self._capture_chars)
        self._cell = cell
        filename = f"<cell {self._counter}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        started = time.perf_counter()
        error = kind = None
        try:
            exec_cell(code, filename, self._namespace, cell.capture.write)
        except FinalSignal:
            pass
        except (Exception, SystemExit) as exc:
            error, kind = cell_error(exc, filename), error_type(exc)
        finally:
            self._cell = None
        output, truncated = cell.capture.getvalue()
        return CellResult(
            output=output,
            error=error,
            error_type=kind,
            final=cell.final,
            truncated=truncated,
            duration_s=time.perf_counter() - started,
        )

    async def get_variable(self, name: str) -> str | None:
        if name not in self._namespace or self._hidden(name):
            return None
        value = self._namespace[name]
        return value if isinstance(value, str) else str(value)

    async def close(self) -> None:
        self._namespace = {}
        self._started = False
