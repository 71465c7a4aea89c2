"""Which REPLs send their scans to the host, and a sandbox that adds the host's scans to the
host functions it is started with.

A REPL sends ``count``, ``grep`` and ``search_files`` to the host (:mod:`rlmx.sandbox.scans`)
only when the host makes scans (a run whose executor is remote) and the context is a directory
or a set of files, each read from a path every node can read. Otherwise it scans itself, as it
always has: no request, no round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlmx.context import Context, ContextInput
from rlmx.sandbox.base import HostFunctions, Sandbox, SandboxFactory, Scans, scans_of
from rlmx.sandbox.scans import answer_scan, check_scan
from rlmx.types import CellResult

KINDS = ("directory", "documents")
MODES = ("eager", "lazy", "cached")


@dataclass(frozen=True, slots=True)
class ScanRoute:
    """Where a REPL's scans go: the host's scans, over the context's documents."""

    scans: Scans
    docs: list[dict[str, Any]]
    kind: str

    def answer(self, fn: str, args: object) -> int | dict[str, Any]:
        """Check a request and answer it (raises TypeError or ValueError when refused)."""
        checked = check_scan(fn, args, len(self.docs))
        return answer_scan(self.scans, self.docs, self.kind, fn, checked)


def scan_route(context: Context, host: object) -> ScanRoute | None:
    """Where the REPL over ``context`` sends its scans; None when it makes them itself."""
    scans = scans_of(host)
    if scans is None or context.value is not None or context.kind not in KINDS:
        return None
    docs = context.spec()["docs"]
    readable = all(d.get("path") and d.get("mode") in MODES for d in docs)
    return ScanRoute(scans, docs, context.kind) if docs and readable else None


class ScansHost:
    """``host``'s functions, with ``scans`` added."""

    def __init__(self, host: HostFunctions, scans: Scans) -> None:
        self._host, self.scans = host, scans

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        return self._host.llm_query(prompt, model)

    def llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        return self._host.llm_query_batched(prompts, model)

    def llm_map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None = None,
        model: str | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> list[str | None]:
        return self._host.llm_map(instruction, items, labels, model, examples)

    def rlm_query(self, prompt: str, context: ContextInput | None = None) -> str:
        return self._host.rlm_query(prompt, context)


class ScanningSandbox:
    """A sandbox whose host functions get ``scans``: for a REPL started with host functions
    that have none of their own (a session's, which outlive each run's)."""

    def __init__(self, inner: Sandbox, scans: Scans) -> None:
        self._inner, self._scans = inner, scans

    async def start(self, context: ContextInput, host: HostFunctions) -> None:
        await self._inner.start(context, ScansHost(host, self._scans))

    async def execute(self, code: str) -> CellResult:
        return await self._inner.execute(code)

    async def get_variable(self, name: str) -> str | None:
        return await self._inner.get_variable(name)

    async def close(self) -> None:
        await self._inner.close()


def with_scans(factory: SandboxFactory, scans: Scans | None) -> SandboxFactory:
    """``factory``, its sandboxes given ``scans`` (``factory`` itself when there are none)."""
    if scans is None:
        return factory
    given = scans

    def make() -> Sandbox:
        return ScanningSandbox(factory(), given)

    return make
