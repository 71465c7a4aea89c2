"""The in-process executor: what the engine has always done. A sub-call is the client's own
``complete`` on the event loop; a corpus helper reads the files in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rlmx.context.helpers import Hits
from rlmx.executors.base import DocSpec, NestedRun
from rlmx.executors.corpus import count_docs, grep_docs, merge_hits, search_docs
from rlmx.providers.base import CallOptions, LLMClient
from rlmx.types import Completion, Message, RunResult


class LocalExecutor:
    """Runs everything in this process (the default)."""

    name = "local"

    async def complete(
        self, client: LLMClient, messages: Sequence[Message], options: CallOptions
    ) -> Completion:
        return await client.complete(messages, **options)

    async def count(self, docs: Sequence[DocSpec], pattern: str, flags: int = 0) -> int:
        return await asyncio.to_thread(count_docs, docs, pattern, flags)

    async def search_files(
        self, docs: Sequence[DocSpec], pattern: str, *, limit: int = 200, flags: int = 0
    ) -> Hits:
        hits, limited = await asyncio.to_thread(search_docs, docs, pattern, limit, flags)
        return merge_hits([(0, hits, limited)], limit)

    async def grep(
        self,
        docs: Sequence[DocSpec],
        pattern: str,
        *,
        around: int = 200,
        limit: int = 100,
        flags: int = 0,
        kind: str = "directory",
    ) -> Hits:
        found = await asyncio.to_thread(grep_docs, docs, pattern, around, limit, flags, kind)
        return merge_hits([(0, *found)], limit, kind, Hits.separator)

    async def aclose(self) -> None:
        return None

    async def run_nested(self, nested: NestedRun) -> RunResult:
        return await nested.here()
