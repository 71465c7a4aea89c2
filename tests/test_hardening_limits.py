"""Limits that hold against hostile model code and hostile providers: batches capped by the
budget and run through a bounded pool, nested runs held to the tree's concurrency, a default
wall clock, a total timeout per HTTP request, and empty replies that are errors."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Unpack

import pytest

from rlmx import RLM, Limits
from rlmx.cli.main import main
from rlmx.config import DEFAULT_TIMEOUT_S, Settings
from rlmx.context import ContextInput
from rlmx.engine.pool import bounded_map
from rlmx.errors import ProviderError
from rlmx.providers.base import CallOptions
from rlmx.providers.openai_compat import OpenAICompatClient
from rlmx.providers.presets import PRESETS
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.sandbox.base import HostFunctions
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.types import Completion, Message, RunResult

from .conftest import repl, scripted
from .conftest_http import FakeServer, Reply, chat_reply, running_server


def _run(root: ScriptedModel, sub: ScriptedModel | None = None, **limits: Any) -> RunResult:
    rlm = RLM(model=root, sub_model=sub, limits=Limits(**limits), sandbox=InProcessRepl)
    return rlm.run("What is the vault code?", "the vault code is ZETA-42\n")


class TaskCountingModel(ScriptedModel):
    """Answers every prompt, and notes the most asyncio tasks alive during any call."""

    def __init__(self) -> None:
        super().__init__(rules=[Rule("", "r")])
        self.most_tasks = 0

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        self.most_tasks = max(self.most_tasks, len(asyncio.all_tasks()))
        return await super().complete(messages, **options)


# Finding 4: llm_query_batched made a coroutine per prompt before the budget was checked.


def test_a_batch_larger_than_the_sub_calls_left_is_refused_before_any_call() -> None:
    code = (
        "try:\n"
        "    answers = llm_query_batched(['x'] * 200_000)\n"
        "    print('answered', len(answers))\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)"
    )
    root = scripted(repl(code), repl("FINAL('stopped')"))
    sub = scripted(rules={"x": "r"})
    result = _run(root, sub, max_sub_calls=5)
    shown = root.calls[1][-1].content
    assert "llm_query_batched of 200,000 prompts, but 5 sub-calls left" in shown
    assert "answered" not in shown
    assert sub.calls == []
    assert (result.status, result.answer, result.sub_calls) == ("completed", "stopped", 0)


def test_a_batch_within_the_budget_runs_through_a_bounded_pool() -> None:
    prompts = 3_000
    code = (
        f"answers = llm_query_batched([f'p{{i}}' for i in range({prompts})])\nFINAL(len(answers))"
    )
    sub = TaskCountingModel()
    result = _run(scripted(repl(code)), sub, concurrency=4)
    assert result.answer == str(prompts)
    assert result.sub_calls == prompts
    # A task per prompt would put thousands alive at once; the pool keeps its width of them.
    assert sub.most_tasks < 40


def test_llm_map_runs_through_the_same_bounded_pool() -> None:
    code = "answers = llm_map('Which?', [f'item {i}' for i in range(2_000)])\nFINAL(len(answers))"
    sub = TaskCountingModel()
    result = _run(scripted(repl(code)), sub, concurrency=4)
    assert result.answer == "2000"
    assert sub.most_tasks < 40


def test_the_pool_keeps_order_holds_its_width_and_raises_the_first_error() -> None:
    alive = 0
    most = 0

    async def double(n: int) -> int:
        nonlocal alive, most
        alive += 1
        most = max(most, alive)
        await asyncio.sleep(0)
        alive -= 1
        if n == 77:
            raise ValueError("item 77")
        return n * 2

    assert asyncio.run(bounded_map(double, range(50), 3)) == [n * 2 for n in range(50)]
    assert most == 3
    with pytest.raises(ValueError, match="item 77"):
        asyncio.run(bounded_map(double, range(100), 3))


# Finding 8: nested runs ignored --concurrency.


class CountingRepl(InProcessRepl):
    """An in-process REPL that counts how many are started and not yet closed."""

    lock = threading.Lock()
    live = 0
    most = 0

    async def start(self, context: ContextInput, host: HostFunctions) -> None:
        with CountingRepl.lock:
            CountingRepl.live += 1
            CountingRepl.most = max(CountingRepl.most, CountingRepl.live)
        await super().start(context, host)

    async def close(self) -> None:
        with CountingRepl.lock:
            CountingRepl.live -= 1
        await super().close()


def test_nested_runs_take_the_trees_concurrency() -> None:
    fan_out = (
        "import threading\n"
        "answers = []\n"
        "def ask(i):\n"
        "    answers.append(rlm_query(f'task {i}', context='a small context'))\n"
        "threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "print(sorted(answers))"
    )
    # Each nested run sleeps in its cell, so runs started together are alive together.
    nested = repl("import time\ntime.sleep(0.3)\nFINAL('done')")
    root = scripted(repl(fan_out), repl("FINAL('all done')"), rules={"task ": nested})
    CountingRepl.live = CountingRepl.most = 0
    rlm = RLM(model=root, limits=Limits(concurrency=3, max_depth=1), sandbox=CountingRepl)
    result = rlm.run("Fan out.", "root context")
    assert result.answer == "all done"
    assert "['done', 'done'" in root.calls[-1][-1].content
    assert CountingRepl.live == 0
    assert CountingRepl.most <= 1 + 3  # the root's REPL and three nested ones


def test_nested_runs_deeper_than_one_level_do_not_deadlock_on_the_slots() -> None:
    # With one slot per depth, a run holding its slot can still start a deeper nested run.
    outer = repl("FINAL(rlm_query('level two', context='ctx'))")
    inner = repl("FINAL('deep answer')")
    root = scripted(
        repl("FINAL(rlm_query('level one', context='ctx'))"),
        rules={"level one": outer, "level two": inner},
    )
    rlm = RLM(
        model=root, limits=Limits(concurrency=1, max_depth=2, timeout_s=60), sandbox=InProcessRepl
    )
    result = rlm.run("Go deep.", "root context")
    assert (result.status, result.answer) == ("completed", "deep answer")


# Finding 10b: no default wall clock, and no total timeout per HTTP request.


class TrickleServer:
    """Answers every request with a 200 and its headers, then one byte of body at a time,
    slowly, until the client goes away: each read is quick, the reply never completes."""

    def __init__(self, interval_s: float = 0.2, limit_s: float = 60.0) -> None:
        self._interval_s, self._limit_s = interval_s, limit_s
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        self.requests = 0

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> TrickleServer:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._listener.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.requests += 1
            self._spawn(self._trickle, conn)

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: 1000000\r\n\r\n"
            )
            deadline = time.monotonic() + self._limit_s
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    conn.sendall(b" ")  # whitespace: still the start of a valid JSON body
                except OSError:
                    return
                self._stop.wait(self._interval_s)


MESSAGES = [Message("user", "say hello")]
# Far longer than the total timeout the tests set, far shorter than a trickle that never ends.
HANG = 25.0


async def test_a_trickling_openai_compatible_server_fails_within_the_total_timeout() -> None:
    with TrickleServer() as server:
        client = OpenAICompatClient(
            preset=PRESETS["vllm"],
            model="m",
            api_key=None,
            base_url=f"{server.url}/v1",
            max_retries=0,
            timeout_s=1.0,
        )
        try:
            with pytest.raises(ProviderError, match="timed out: no complete reply within 1 s"):
                await asyncio.wait_for(client.complete(MESSAGES), HANG)
        finally:
            await client.aclose()
    assert server.requests == 1


async def test_a_trickling_anthropic_server_fails_within_the_total_timeout() -> None:
    pytest.importorskip("anthropic")
    from rlmx.providers.anthropic import AnthropicClient

    with TrickleServer() as server:
        client = AnthropicClient(
            model="claude-haiku-4-5",
            api_key="sk-ant-test",
            base_url=server.url,
            max_retries=0,
            timeout_s=1.0,
        )
        try:
            with pytest.raises(ProviderError, match="timed out: no complete reply within 1 s"):
                await asyncio.wait_for(client.complete(MESSAGES), HANG)
        finally:
            await client.aclose()


def test_runs_have_a_wall_clock_unless_told_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert Limits().timeout_s == DEFAULT_TIMEOUT_S == 3600
    assert Limits(timeout_s=None).timeout_s is None  # the Python API can still remove it
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"responses": [repl("FINAL('x')")]}), encoding="utf-8")
    (tmp_path / "c.txt").write_text("some context\n", encoding="utf-8")
    trace = tmp_path / "t.jsonl"
    argv = ["run", "q", "-c", str(tmp_path / "c.txt"), "-m", f"scripted:{script}"]
    assert main([*argv, "--sandbox", "none", "--no-db", "-q", "--trace", str(trace)]) == 0
    started = json.loads(trace.read_text(encoding="utf-8").splitlines()[0])
    assert started["limits"]["timeout_s"] == DEFAULT_TIMEOUT_S
    assert capsys.readouterr().out.strip() == "x"


# Finding 10c: an empty reply from an OpenAI-compatible server used up iterations unnoticed.


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with running_server() as server:
        yield server


def no_choices() -> dict[str, Any]:
    body = chat_reply()
    body["choices"] = []
    return body


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (no_choices(), "the reply has no choices"),
        (chat_reply(None), "the reply has no text"),
        (chat_reply(None, finish_reason="length"), "used up max_tokens"),
    ],
)
async def test_an_empty_reply_is_a_provider_error_naming_the_provider(
    fake: FakeServer, body: dict[str, Any], why: str
) -> None:
    fake.push(Reply(200, body))
    client = OpenAICompatClient(
        preset=PRESETS["vllm"], model="m", api_key=None, base_url=f"{fake.url}/v1", max_retries=0
    )
    try:
        with pytest.raises(ProviderError, match=why) as info:
            await client.complete(MESSAGES)
    finally:
        await client.aclose()
    assert str(info.value).startswith("vllm:m: ")
    assert info.value.provider == "vllm"


def test_a_run_on_an_empty_replying_server_ends_at_once_with_an_error(fake: FakeServer) -> None:
    fake.default = Reply(200, no_choices())
    rlm = RLM(
        model="vllm:m",
        base_url=f"{fake.url}/v1",
        settings=Settings(env={}),
        limits=Limits(max_iterations=5),
        sandbox=InProcessRepl,
    )
    result = rlm.run("What is the vault code?", "the vault code is ZETA-42\n")
    assert result.status == "error"
    assert "vllm:m" in (result.error or "")
    assert "no choices" in (result.error or "")
    assert len(fake.requests) == 1
