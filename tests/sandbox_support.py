"""Shared pieces of the sandbox tests: a fake host, mode parameters, skips."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from rlmx.context import ContextValue
from rlmx.sandbox.confine import probe
from rlmx.sandbox.process import ProcessSandbox

PROBE = probe() if sys.platform.startswith("linux") else {"problem": "not Linux"}
HAS_KERNEL = "problem" not in PROBE
HAS_BWRAP = HAS_KERNEL and shutil.which("bwrap") is not None

needs_kernel = pytest.mark.skipif(
    not HAS_KERNEL, reason=f"no Landlock/seccomp here: {PROBE.get('problem')}"
)
needs_bwrap = pytest.mark.skipif(
    not HAS_BWRAP, reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
)

CONFINED_MODES = [
    pytest.param("default", marks=needs_kernel),
    pytest.param("strict", marks=needs_bwrap),
]
ALL_MODES = [*CONFINED_MODES, "none"]


class FakeHost:
    """HostFunctions answering at once (or after ``latency_s``), recording every call."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.calls: list[tuple[str, Any]] = []
        self.max_active = 0
        self._active = 0
        self._lock = threading.Lock()

    def _enter(self, kind: str, payload: Any) -> None:
        with self._lock:
            self.calls.append((kind, payload))
            self._active += 1
            self.max_active = max(self.max_active, self._active)
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            self._active -= 1

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        self._enter("llm", (prompt, model))
        if prompt.startswith("FAIL"):
            raise KeyError(f"unknown model {model!r} for llm_query")
        return f"answer to {prompt}"

    def llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        self._enter("batch", list(prompts))
        return [f"answer to {p}" for p in prompts]

    def rlm_query(self, prompt: str, context: ContextValue | None = None) -> str:
        self._enter("rlm", (prompt, context))
        size = None if context is None else len(context)
        return f"rlm {prompt} over {size}"


@asynccontextmanager
async def session(
    mode: str,
    context: ContextValue = "the context\n",
    host: FakeHost | None = None,
    **options: Any,
) -> AsyncIterator[ProcessSandbox]:
    sandbox = ProcessSandbox(mode=mode, **options)  # type: ignore[arg-type]
    await sandbox.start(context, host or FakeHost())
    try:
        yield sandbox
    finally:
        await sandbox.close()
