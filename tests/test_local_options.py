"""The in-process llama.cpp client's options (``choices``, ``seed``, ``json_schema``) and its
concurrent slots.

Most tests put a fake llama.cpp server in place of the real one (``_build_server``), so they
run without a model; the tests marked ``local`` use the real 0.5B model and take seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmx.config import Settings
from rlmx.errors import ConfigError, ProviderError
from rlmx.local import models as registry
from rlmx.providers import local_runtime, local_wire
from rlmx.providers.grammar import choice_grammar
from rlmx.providers.local import DEFAULT_SLOTS, LocalClient, local_client, unload_all
from rlmx.types import Message

QUESTION = [Message("user", "Pick one.")]

# --- the grammar ----------------------------------------------------------------------


def test_choices_become_a_gbnf_alternation() -> None:
    assert choice_grammar(["ABBR", "DESC", "NUM"]) == 'root ::= "ABBR" | "DESC" | "NUM"'


def test_choices_escape_quotes_backslashes_and_control_characters() -> None:
    grammar = choice_grammar(['say "hi"', "a\\b", "two\nlines", "tab\there\r", "bell\x07\x7f"])
    assert grammar == (
        'root ::= "say \\"hi\\"" | "a\\\\b" | "two\\nlines" | "tab\\there\\r" | "bell\\x07\\x7F"'
    )


def test_choices_keep_other_characters_and_drop_duplicates() -> None:
    assert choice_grammar(["café", "日本", "café", "a|b (c)*"]) == (
        'root ::= "café" | "日本" | "a|b (c)*"'
    )


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ("yes", "list of strings"),
        ([], "at least one"),
        ([""], "at least one"),
        (["yes", 1], "must be a string"),
    ],
)
def test_bad_choices_are_config_errors(choices: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        local_wire._choices_grammar("local:m", choices)


# --- a fake llama.cpp server ------------------------------------------------------------


class FakeServer:
    """Streams "reply N" for request N after ``delay_s``; records requests and how many ran
    at once."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.running: list[str] = []  # the last message of each request in progress
        self.most_running = 0
        self.together: list[list[str]] = []  # who ran beside whom, at each start
        self._lock = threading.Lock()

    def handle_chat_completions(
        self, request: dict[str, Any], callback: Callable[[dict[str, Any]], bool]
    ) -> None:
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
            self.running.append(request["messages"][-1]["content"])
            self.most_running = max(self.most_running, len(self.running))
            self.together.append(list(self.running))
        try:
            deadline = time.perf_counter() + self.delay_s
            while time.perf_counter() < deadline:
                if callback({"choices": [{"delta": {}}]}):  # a progress chunk
                    return
                time.sleep(0.005)
            callback({"choices": [{"delta": {"content": f"reply {number}"}}]})
            callback(
                {
                    "choices": [{"delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 2},
                }
            )
        finally:
            with self._lock:
                self.running.remove(request["messages"][-1]["content"])


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    server = FakeServer()
    built: list[tuple[int, int]] = []

    def build(path: Path, n_ctx: int, slots: int) -> FakeServer:
        built.append((n_ctx, slots))
        return server

    monkeypatch.setattr(local_runtime, "_build_server", build)
    unload_all()
    server.built = built  # type: ignore[attr-defined]
    yield server
    unload_all()


async def _started(fake: FakeServer) -> None:
    """Wait until the fake server is answering a request."""
    for _ in range(200):
        if fake.running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no request reached the fake server")


def _client(tmp_path: Path, n_ctx: int | None = 4096, slots: int = 4) -> LocalClient:
    return LocalClient("fake", tmp_path / "fake.gguf", n_ctx, slots=slots)


async def test_choices_seed_and_schema_reach_llama_cpp(tmp_path: Path, fake: FakeServer) -> None:
    client = _client(tmp_path)
    await client.complete(QUESTION, choices=["yes", "no", "maybe"], seed=7, temperature=0.8)
    await client.complete(QUESTION, json_schema={"type": "object"}, max_tokens=50)
    first, second = fake.requests
    assert first["grammar"] == 'root ::= "yes" | "no" | "maybe"'
    assert (first["seed"], first["temperature"]) == (7, 0.8)
    assert first["max_tokens"] == len("maybe") + 1  # enough for the longest choice
    assert "json_schema" not in first
    assert second["json_schema"] == {"type": "object"}
    assert "grammar" not in second
    assert "seed" not in second
    assert second["max_tokens"] == 50
    await client.complete(QUESTION, top_logprobs=50)
    assert (fake.requests[2]["logprobs"], fake.requests[2]["top_logprobs"]) == (True, 20)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": "1"}, "seed"),
        ({"json_schema": "{}"}, "json_schema"),
        ({"json_schema": {}, "choices": ["a"]}, "exclude each other"),
        ({"choices": "ab"}, "list of strings"),
    ],
)
async def test_bad_options_are_config_errors(
    tmp_path: Path, fake: FakeServer, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        await _client(tmp_path).complete(QUESTION, **options)
    assert fake.requests == []


async def test_unknown_options_are_refused_before_any_request(
    tmp_path: Path, fake: FakeServer
) -> None:
    with pytest.raises(ConfigError, match=r"unknown option.*top_k"):
        await _client(tmp_path).complete(QUESTION, top_k=3)  # type: ignore[call-arg]
    assert fake.requests == []


async def test_calls_run_concurrently_up_to_the_slots(tmp_path: Path, fake: FakeServer) -> None:
    fake.delay_s = 0.2
    client = _client(tmp_path, slots=3)
    replies = await asyncio.gather(*(client.complete(QUESTION, max_tokens=8) for _ in range(7)))
    assert fake.most_running == 3
    assert sorted(r.text for r in replies) == [f"reply {n}" for n in range(1, 8)]
    assert fake.built == [(4096, 3)]  # type: ignore[attr-defined]


async def test_calls_that_may_overflow_the_shared_cache_wait(
    tmp_path: Path, fake: FakeServer
) -> None:
    fake.delay_s = 0.1
    client = _client(tmp_path, n_ctx=1000, slots=4)
    big = "x" * 500  # 500 bytes + the template + 300 tokens: two of them do not fit in 1000
    calls = [client.complete([Message("user", big)], max_tokens=300) for _ in range(3)]
    calls += [client.complete([Message("user", "hi")], max_tokens=5) for _ in range(3)]
    await asyncio.gather(*calls)
    assert len(fake.requests) == 6
    assert all(running.count(big) <= 1 for running in fake.together)


async def test_a_call_larger_than_the_window_runs_alone(tmp_path: Path, fake: FakeServer) -> None:
    fake.delay_s = 0.1
    client = _client(tmp_path, n_ctx=1000, slots=4)
    huge = "x" * 5000
    await asyncio.gather(
        *(client.complete([Message("user", text)], max_tokens=5) for text in ("a", huge, "b"))
    )
    assert len(fake.requests) == 3
    assert all(running == [huge] for running in fake.together if huge in running)


async def test_a_call_cancelled_while_it_waits_never_reaches_llama_cpp(
    tmp_path: Path, fake: FakeServer
) -> None:
    fake.delay_s = 0.5
    client = _client(tmp_path, slots=1)
    running = asyncio.create_task(client.complete(QUESTION))
    await _started(fake)
    waiting = asyncio.create_task(client.complete([Message("user", "never sent")]))
    await asyncio.sleep(0.1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await running).text == "reply 1"
    assert [r["messages"][0]["content"] for r in fake.requests] == ["Pick one."]


async def test_a_model_of_unknown_window_gets_one_slot(tmp_path: Path, fake: FakeServer) -> None:
    model = _client(tmp_path, n_ctx=None, slots=4).load()
    assert (model.slots, model.n_ctx) == (1, 0)
    assert fake.built == [(0, 1)]  # type: ignore[attr-defined]


async def test_a_call_queued_when_the_model_is_unloaded_is_a_provider_error(
    tmp_path: Path, fake: FakeServer
) -> None:
    fake.delay_s = 0.3
    client = _client(tmp_path, slots=1)
    running = asyncio.create_task(client.complete(QUESTION))
    await _started(fake)
    queued = asyncio.create_task(client.complete([Message("user", "queued")]))
    await asyncio.sleep(0.1)
    await asyncio.to_thread(unload_all)  # waits for the running call
    assert (await running).text == "reply 1"
    with pytest.raises(ProviderError, match="unloaded"):
        await queued
    assert len(fake.requests) == 1


def test_slots_come_from_the_environment(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert local_client(str(gguf), settings=Settings(env={})).slots == DEFAULT_SLOTS
    two = local_client(str(gguf), settings=Settings(env={"RLMX_LOCAL_SLOTS": "2"}))
    assert two.slots == 2
    for bad in ("0", "many", "65"):
        with pytest.raises(ConfigError, match="RLMX_LOCAL_SLOTS"):
            local_client(str(gguf), settings=Settings(env={"RLMX_LOCAL_SLOTS": bad}))


# --- the real 0.5B model ----------------------------------------------------------------

SMALL = "qwen2.5-coder-0.5b"
CAPITALS = {
    "France": "Paris",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Germany": "Berlin",
    "Japan": "Tokyo",
    "Egypt": "Cairo",
}


def _small(settings: Settings) -> LocalClient:
    model = registry.get_model(SMALL)
    st = registry.status(model, settings.home)
    if not (st.installed or st.assembled):
        pytest.skip(f"the packages of {SMALL} are not installed")
    return local_client(SMALL, settings=settings)


def _capital(country: str) -> list[Message]:
    return [
        Message("system", "Answer with the name of the city only."),
        Message("user", f"What is the capital of {country}?"),
    ]


@pytest.mark.local
async def test_real_choices_constrain_the_reply(local_settings: Settings) -> None:
    client = _small(local_settings)
    odd = ['say "yes"', "back\\slash", "two\nlines"]
    reply = await client.complete([Message("user", "Pick one of the options.")], choices=odd)
    assert reply.text in odd
    assert reply.finish_reason == "stop"
    labels = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    question = [
        Message("system", "Label the question: " + ", ".join(labels) + "."),
        Message("user", "How many miles is it from London to Paris?"),
    ]
    assert (await client.complete(question, choices=labels)).text in labels


@pytest.mark.local
async def test_real_top_logprobs_rank_the_choices_before_the_grammar(
    local_settings: Settings,
) -> None:
    client = _small(local_settings)
    question = [
        Message("system", "Answer yes or no."),
        Message("user", "Is Paris in France?"),
    ]
    reply = await client.complete(question, choices=["yes", "no"], max_tokens=1, top_logprobs=5)
    assert reply.text == "yes"
    tokens = [token.strip().lower() for token, _ in reply.top_logprobs]
    assert len(tokens) == 5
    assert "yes" in tokens
    assert all(logprob <= 0 for _, logprob in reply.top_logprobs)


@pytest.mark.local
async def test_real_concurrent_calls_answer_each_its_own_question(
    local_settings: Settings,
) -> None:
    client = _small(local_settings)
    cities = list(CAPITALS.values())
    replies = await asyncio.gather(
        *(client.complete(_capital(country), choices=cities) for country in CAPITALS)
    )
    assert [r.text for r in replies] == cities
    assert all(r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0 for r in replies)


@pytest.mark.local
async def test_real_seed_makes_sampling_reproducible(local_settings: Settings) -> None:
    client = _small(local_settings)
    story = [Message("user", "Write one sentence about a cat.")]

    async def sample(seed: int) -> str:
        reply = await client.complete(story, temperature=0.9, seed=seed, max_tokens=24)
        return reply.text

    await sample(1)  # the first call evaluates the prompt; the later ones read it from the cache
    first = await sample(1)
    assert await sample(1) == first
    others = {await sample(seed) for seed in (2, 3, 4)}
    assert others - {first}


@pytest.mark.local
async def test_real_conversation_keeps_its_cache_beside_concurrent_calls(
    local_settings: Settings,
) -> None:
    client = _small(local_settings)
    turns = [
        Message("system", "You are a helpful assistant. " + "Answer briefly. " * 30),
        Message("user", "Name a river in Europe."),
    ]
    first = await client.complete(turns, max_tokens=16)
    cities = list(CAPITALS.values())
    await asyncio.gather(*(client.complete(_capital(c), choices=cities) for c in CAPITALS))
    turns += [Message("assistant", first.text), Message("user", "How long is it?")]
    second = await client.complete(turns, max_tokens=16)
    assert second.usage.cached_tokens >= first.usage.prompt_tokens - 1
