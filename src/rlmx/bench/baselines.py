"""The baselines of the paper's Table 1, on the same models as the RLM.

- ``direct``: the whole context in one prompt to the root model. A context beyond the model's
  window is cut (its head is kept) and the result is flagged ``truncated``.
- ``summary``: iterative summarisation: the sub-model reads the context chunk by chunk and
  keeps running notes about the question; the root model answers from the notes.
- ``retrieval``: BM25 (the ``bm25s`` package) over chunks of the context; the root model
  answers from the top-k chunks that fit its window.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

from rlmx.bench.base import BenchModels, MethodResult
from rlmx.bench.chunking import chunk_context, truncate_head
from rlmx.bench.tasks import Task
from rlmx.context import describe_context
from rlmx.errors import ConfigError, ProviderError, RlmxError
from rlmx.providers.base import LLMClient
from rlmx.trajectory.base import Recorder
from rlmx.trajectory.events import RootReply, RunFinished, RunStarted, SubCall
from rlmx.types import Message, RunResult, RunStatus, Usage, UsageReport

# Conservative characters per token for budgeting prompts (dense text such as log lines or
# OOLONG's dated lines packs fewer characters into a token than prose).
BUDGET_CHARS_PER_TOKEN = 3.0
DEFAULT_WINDOW = 128_000
ANSWER_TOKENS = 1024

DIRECT_PROMPT = (
    "Read the following text and answer the question after it.\n\n<text>\n{context}\n</text>\n\n"
    "Question: {query}\nAnswer the question using only the text above. Be concise."
)
NOTES_PROMPT = (
    "You are reading a long text in parts, to answer a question later.\n"
    "Question: {query}\n\nYour notes so far:\n{notes}\n\nNext part ({index} of {total}):\n"
    "<text>\n{chunk}\n</text>\n\nRewrite your notes: keep everything from the notes and from "
    "this part that helps answer the question (exact names, numbers, counts), drop the rest. "
    "At most {words} words. Reply with the notes only."
)
NOTES_ANSWER = (
    "Notes taken while reading a long text:\n{notes}\n\nQuestion: {query}\n"
    "Answer the question from the notes. Be concise."
)
RETRIEVAL_PROMPT = (
    "Passages retrieved from a long text, most relevant first:\n\n{passages}\n\n"
    "Question: {query}\nAnswer the question using only these passages. Be concise."
)


def window_of(client: LLMClient) -> int:
    return client.profile.context_window or DEFAULT_WINDOW


def prompt_budget_chars(client: LLMClient, overhead_chars: int) -> int:
    tokens = window_of(client) - ANSWER_TOKENS - 64
    return max(1_000, int(tokens * BUDGET_CHARS_PER_TOKEN) - overhead_chars)


class _Calls:
    """Calls one model and keeps the totals, the trace events and the trace id."""

    def __init__(self, task: Task, models: BenchModels, recorder: Recorder, method: str) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        self.recorder = recorder
        self.root = Usage()
        self.sub = Usage()
        self.cost: float | None = 0.0
        self.sub_calls = 0
        self.iterations = 0
        recorder.on_event(
            RunStarted(
                run_id=self.run_id,
                query=task.query,
                context=describe_context(task.plain_context()).to_dict(),
                root_model=models.root.spec,
                sub_model=models.sub.spec,
                limits={"bench_method": method, "task_id": task.task_id},
            )
        )

    async def ask(self, client: LLMClient, prompt: str, *, is_root: bool) -> str:
        completion = await client.complete([Message("user", prompt)], max_tokens=ANSWER_TOKENS)
        if completion.cost_usd is None or self.cost is None:
            self.cost = None
        else:
            self.cost += completion.cost_usd
        usage = completion.usage.to_dict()
        if is_root:
            self.root = self.root + completion.usage
            self.iterations += 1
            self.recorder.on_event(
                RootReply(
                    run_id=self.run_id,
                    iteration=self.iterations,
                    text=completion.text,
                    usage=usage,
                    latency_s=round(completion.latency_s, 4),
                    cost_usd=completion.cost_usd,
                    model=client.spec,
                )
            )
        else:
            self.sub = self.sub + completion.usage
            self.sub_calls += 1
            self.recorder.on_event(
                SubCall(
                    run_id=self.run_id,
                    depth=1,
                    call_id=f"{self.run_id}.{self.sub_calls}",
                    kind="llm",
                    model=client.spec,
                    prompt=prompt[:2_000],
                    response=completion.text,
                    usage=usage,
                    latency_s=round(completion.latency_s, 4),
                    cost_usd=completion.cost_usd,
                )
            )
        return completion.text

    def finish(
        self,
        answer: str | None,
        status: RunStatus,
        started: float,
        error: str | None,
        **extra: Any,
    ) -> MethodResult:
        wall = time.perf_counter() - started
        truncated = bool(extra.pop("truncated", False))
        result = MethodResult(
            answer=answer,
            status=status,
            root=self.root,
            sub=self.sub,
            cost_usd=self.cost,
            wall_s=wall,
            iterations=self.iterations,
            sub_calls=self.sub_calls,
            trace_id=self.run_id,
            error=error,
            truncated=truncated,
            notes=extra,
        )
        record = RunResult(
            answer=answer,
            status=status,
            iterations=self.iterations,
            sub_calls=self.sub_calls,
            usage=UsageReport(root=self.root, sub=self.sub, by_depth={0: self.root, 1: self.sub}),
            cost_usd=self.cost,
            wall_s=wall,
            run_id=self.run_id,
            error=error,
        )
        self.recorder.on_event(
            RunFinished(run_id=self.run_id, result={**record.to_dict(), "notes": extra})
        )
        return result


async def _guarded(calls: _Calls, started: float, timeout: float | None, body: Any) -> MethodResult:
    """Run a baseline's body under the time limit; failures become a status, never a raise."""
    notes: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            answer = await body(notes)
    except TimeoutError:
        return calls.finish(None, "timeout", started, f"timeout after {timeout:g} s", **notes)
    except RlmxError as exc:
        return calls.finish(None, "error", started, str(exc), **notes)
    return calls.finish(answer, "completed", started, None, **notes)


def _too_long(exc: ProviderError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("context", "exceed", "too long", "too many tokens"))


class Direct:
    name = "direct"

    def __init__(self, **_: Any) -> None:
        return None

    async def run(self, task: Task, models: BenchModels, recorder: Recorder) -> MethodResult:
        started = time.perf_counter()
        calls = _Calls(task, models, recorder, self.name)
        text = task.context_text()
        overhead = len(DIRECT_PROMPT) + len(task.query)

        async def body(notes: dict[str, Any]) -> str:
            budget = prompt_budget_chars(models.root, overhead)
            for _attempt in range(4):
                kept, truncated = truncate_head(text, budget)
                notes.update(truncated=truncated, kept_chars=len(kept), total_chars=len(text))
                prompt = DIRECT_PROMPT.format(context=kept, query=task.query)
                try:
                    return await calls.ask(models.root, prompt, is_root=True)
                except ProviderError as exc:
                    if not _too_long(exc):
                        raise
                    budget = int(budget * 0.75)  # our estimate was short: cut more and retry
            raise ConfigError("the prompt never fitted the model's window")

        return await _guarded(calls, started, models.limits.timeout_s, body)


class Summary:
    name = "summary"

    def __init__(self, *, chunk_tokens: int = 8_000, notes_words: int = 300, **_: Any) -> None:
        self.chunk_tokens = chunk_tokens
        self.notes_words = notes_words

    async def run(self, task: Task, models: BenchModels, recorder: Recorder) -> MethodResult:
        started = time.perf_counter()
        calls = _Calls(task, models, recorder, self.name)
        fit = prompt_budget_chars(models.sub, len(NOTES_PROMPT) + self.notes_words * 8)
        size = min(fit, int(self.chunk_tokens * BUDGET_CHARS_PER_TOKEN))
        chunks = chunk_context(task.plain_context(), size)

        async def body(notes: dict[str, Any]) -> str:
            running = "(none yet)"
            notes["chunks"] = len(chunks)
            for index, chunk in enumerate(chunks, 1):
                prompt = NOTES_PROMPT.format(
                    query=task.query,
                    notes=running,
                    index=index,
                    total=len(chunks),
                    chunk=chunk,
                    words=self.notes_words,
                )
                running = (await calls.ask(models.sub, prompt, is_root=False)).strip()
            final = NOTES_ANSWER.format(notes=running, query=task.query)
            return await calls.ask(models.root, final, is_root=True)

        return await _guarded(calls, started, models.limits.timeout_s, body)


class Retrieval:
    name = "retrieval"

    def __init__(self, *, chunk_tokens: int = 500, top_k: int = 8, **_: Any) -> None:
        self.chunk_tokens = chunk_tokens
        self.top_k = top_k

    async def run(self, task: Task, models: BenchModels, recorder: Recorder) -> MethodResult:
        started = time.perf_counter()
        calls = _Calls(task, models, recorder, self.name)
        chunks = chunk_context(
            task.plain_context(), int(self.chunk_tokens * BUDGET_CHARS_PER_TOKEN)
        )
        budget = prompt_budget_chars(models.root, len(RETRIEVAL_PROMPT) + len(task.query))

        async def body(notes: dict[str, Any]) -> str:
            ranked = await asyncio.to_thread(bm25_rank, chunks, task.query, self.top_k)
            picked, used = [], 0
            for index in ranked:
                if used + len(chunks[index]) > budget:
                    break
                picked.append(chunks[index])
                used += len(chunks[index]) + 2
            notes.update(chunks=len(chunks), retrieved=len(picked))
            passages = "\n\n".join(f"[{i + 1}]\n{text}" for i, text in enumerate(picked))
            prompt = RETRIEVAL_PROMPT.format(passages=passages, query=task.query)
            return await calls.ask(models.root, prompt, is_root=True)

        return await _guarded(calls, started, models.limits.timeout_s, body)


def bm25_rank(chunks: Sequence[str], query: str, k: int) -> list[int]:
    """Indices of the ``k`` chunks that BM25 ranks highest for ``query``, best first."""
    try:
        bm25s = importlib.import_module("bm25s")  # untyped; imported only when used
    except ImportError:
        raise ConfigError("the retrieval method needs bm25s: pip install 'rlmx[bench]'") from None
    k = min(k, len(chunks))
    if k == 0:
        return []
    corpus_tokens = bm25s.tokenize(list(chunks), stopwords="en", show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
    results, _scores = retriever.retrieve(query_tokens, k=k, show_progress=False)
    return [int(i) for i in results[0]]
