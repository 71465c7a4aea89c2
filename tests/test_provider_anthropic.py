"""AnthropicClient against a real loopback server speaking the Messages API (no mocked SDK)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rlmx.config import Settings
from rlmx.errors import AuthenticationError, ConfigError, ProviderError
from rlmx.providers.anthropic import AnthropicClient, split_system
from rlmx.providers.base import LLMClient
from rlmx.providers.registry import resolve_model
from rlmx.types import Message, Usage

from .conftest_http import FakeServer, Reply, closed_port_url, messages_reply, running_server

MODEL = "claude-haiku-4-5"  # priced, and not on the SDK's deprecation list (which warns)
FAST_RETRY = {"retry-after-ms": "10"}

MakeClient = Callable[..., AnthropicClient]


def sent_key(headers: dict[str, str]) -> str | None:
    """The API key a request carried: older SDKs send x-api-key, 2.x a bearer token."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with running_server() as srv:
        yield srv


@pytest.fixture
async def make_client(server: FakeServer) -> AsyncIterator[MakeClient]:
    clients: list[AnthropicClient] = []

    def make(**overrides: Any) -> AnthropicClient:
        args: dict[str, Any] = {
            "model": MODEL,
            "api_key": "sk-ant-test",
            "base_url": server.url,
            "max_retries": 0,
        }
        args.update(overrides)
        client = AnthropicClient(**args)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_messages_call_maps_system_turns_usage_and_cost(
    server: FakeServer, make_client: MakeClient
) -> None:
    server.push(Reply(200, messages_reply("hi from claude")))
    client = make_client()
    conversation = [
        Message("system", "You are terse."),
        Message("user", "first"),
        Message("user", "second"),
        Message("assistant", "noted"),
        Message("system", "Answer in English."),
        Message("user", "third"),
    ]

    result = await client.complete(conversation, temperature=0.0, stop="END")

    assert isinstance(client, LLMClient)
    assert client.spec == f"anthropic:{MODEL}"
    assert client.profile.context_window == 200_000
    assert result.text == "hi from claude"
    assert result.finish_reason == "end_turn"
    assert result.model == f"anthropic:{MODEL}"  # the spec, as from every client
    # input 50 + cache read 30 + cache write 20; reads and writes are parts of the prompt.
    assert result.usage == Usage(
        prompt_tokens=100, completion_tokens=12, cached_tokens=30, cache_write_tokens=20, calls=1
    )
    # claude-haiku-4-5: $1/M input, $0.10/M cache read, $1.25/M cache write, $5/M output.
    expected = (50 * 1.0 + 30 * 0.10 + 20 * 1.25 + 12 * 5.0) / 1e6
    assert result.cost_usd == pytest.approx(expected, rel=1e-12)

    (seen,) = server.requests
    assert seen.path == "/v1/messages"
    assert sent_key(seen.headers) == "sk-ant-test"
    assert "anthropic-version" in seen.headers
    assert seen.body["model"] == MODEL
    assert seen.body["system"] == "You are terse.\n\nAnswer in English."
    assert seen.body["messages"] == [
        {"role": "user", "content": "first\n\nsecond"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "third"},
    ]
    assert seen.body["max_tokens"] == 4096  # the client default: the API requires one
    assert seen.body["temperature"] == 0.0
    assert seen.body["stop_sequences"] == ["END"]


async def test_options_and_non_text_blocks(server: FakeServer, make_client: MakeClient) -> None:
    body = messages_reply(cache_read=0, cache_write=0)
    body["content"] = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "part one, "},
        {"type": "text", "text": "part two"},
    ]
    server.push(Reply(200, body))

    result = await make_client(max_tokens=1000).complete(
        [Message("user", "go")], max_tokens=64, stop=["A", "B"]
    )

    (seen,) = server.requests
    assert "system" not in seen.body
    assert "temperature" not in seen.body
    assert seen.body["max_tokens"] == 64
    assert seen.body["stop_sequences"] == ["A", "B"]
    assert result.text == "part one, part two"
    assert result.usage == Usage(prompt_tokens=50, completion_tokens=12, cached_tokens=0, calls=1)


async def test_options_the_messages_api_lacks_are_dropped_and_unknown_ones_refused(
    server: FakeServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.push(Reply(200, messages_reply()))
    client = make_client()
    with caplog.at_level(logging.DEBUG, logger="rlmx.providers.options"):
        result = await client.complete(
            [Message("user", "go")], seed=1, choices=["a"], top_logprobs=5, max_tokens=9
        )
    (seen,) = server.requests
    assert seen.body["max_tokens"] == 9
    assert not {"seed", "choices", "top_logprobs", "logprobs"} & set(seen.body)
    assert result.top_logprobs == ()
    assert f"anthropic:{MODEL} ignores options ['choices', 'seed', 'top_logprobs']" in caplog.text
    with pytest.raises(ConfigError, match=r"unknown option.*top_k"):
        await client.complete([Message("user", "go")], top_k=3)  # type: ignore[call-arg]
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("content", "stop_reason", "message"),
    [
        ([], "end_turn", "no text (stop reason 'end_turn')"),
        ([{"type": "thinking", "thinking": "hmm", "signature": "s"}], "max_tokens", "max_tokens"),
        ([], "refusal", "refused"),
    ],
)
async def test_a_reply_without_text_is_a_provider_error_naming_the_provider(
    server: FakeServer,
    make_client: MakeClient,
    content: list[dict[str, str]],
    stop_reason: str,
    message: str,
) -> None:
    body = messages_reply()
    body["content"], body["stop_reason"] = content, stop_reason
    server.push(Reply(200, body))
    with pytest.raises(ProviderError, match=re.escape(message)) as caught:
        await make_client().complete([Message("user", "go")])
    assert str(caught.value).startswith("anthropic:")


@pytest.mark.parametrize(
    ("model", "rates"),
    [
        # USD per 1M tokens: input, cache read (0.1x), 5-minute cache write (1.25x), output.
        ("claude-haiku-4-5", (1.0, 0.10, 1.25, 5.0)),
        ("claude-opus-4-1-20250805", (15.0, 1.50, 18.75, 75.0)),  # a dated name
    ],
)
async def test_cache_writes_and_reads_are_priced_apart(
    server: FakeServer, make_client: MakeClient, model: str, rates: tuple[float, ...]
) -> None:
    reply = messages_reply(
        input_tokens=1_000, output_tokens=200, cache_read=40_000, cache_write=8_000, model=model
    )
    server.push(Reply(200, reply))

    result = await make_client(model=model).complete([Message("user", "x")])

    assert result.usage == Usage(
        prompt_tokens=49_000,
        completion_tokens=200,
        cached_tokens=40_000,
        cache_write_tokens=8_000,
        calls=1,
    )
    assert result.usage.to_dict() == {
        "prompt_tokens": 49_000,
        "completion_tokens": 200,
        "cached_tokens": 40_000,
        "cache_write_tokens": 8_000,
        "total_tokens": 49_200,
        "calls": 1,
        "cache_hits": 0,
    }
    fresh, read, write, output = rates
    expected = (1_000 * fresh + 40_000 * read + 8_000 * write + 200 * output) / 1e6
    assert result.cost_usd == pytest.approx(expected, rel=1e-12)


async def test_reply_without_cache_fields_counts_no_cache_tokens(
    server: FakeServer, make_client: MakeClient
) -> None:
    body = messages_reply(input_tokens=300, output_tokens=10)
    del body["usage"]["cache_read_input_tokens"], body["usage"]["cache_creation_input_tokens"]
    server.push(Reply(200, body))

    result = await make_client().complete([Message("user", "x")])

    assert result.usage == Usage(prompt_tokens=300, completion_tokens=10, calls=1)
    assert result.cost_usd == pytest.approx((300 * 1.0 + 10 * 5.0) / 1e6, rel=1e-12)


async def test_unknown_model_has_unknown_cost(server: FakeServer, make_client: MakeClient) -> None:
    server.push(Reply(200, messages_reply(model="claude-future-9")))
    result = await make_client(model="claude-future-9").complete([Message("user", "x")])
    assert result.cost_usd is None


async def test_401_names_anthropic_key(server: FakeServer, make_client: MakeClient) -> None:
    error = {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    server.push(Reply(401, error))

    with pytest.raises(AuthenticationError) as info:
        await make_client(max_retries=3).complete([Message("user", "x")])

    assert info.value.status == 401
    assert "ANTHROPIC_API_KEY" in str(info.value)
    assert "invalid x-api-key" in str(info.value)
    assert len(server.requests) == 1


async def test_overloaded_is_retried_then_raises(
    server: FakeServer, make_client: MakeClient
) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    server.default = Reply(529, error, FAST_RETRY)

    with pytest.raises(ProviderError) as info:
        await make_client(max_retries=2).complete([Message("user", "x")])

    assert info.value.status == 529
    assert str(info.value).startswith(f"anthropic:{MODEL} (HTTP 529): Overloaded")
    assert len(server.requests) == 3


async def test_500_then_200_is_retried(server: FakeServer, make_client: MakeClient) -> None:
    server.push(Reply(500, {"type": "error"}, FAST_RETRY), Reply(200, messages_reply("ok")))
    result = await make_client(max_retries=1).complete([Message("user", "x")])
    assert result.text == "ok"
    assert len(server.requests) == 2


async def test_non_json_reply_is_a_provider_error(
    server: FakeServer, make_client: MakeClient
) -> None:
    server.push(Reply(200, "<html>proxy login</html>"))
    with pytest.raises(ProviderError, match="did not answer with a Messages API reply"):
        await make_client().complete([Message("user", "x")])


async def test_not_found_names_model_and_url(server: FakeServer, make_client: MakeClient) -> None:
    error = {"type": "error", "error": {"type": "not_found_error", "message": "model: nope"}}
    server.push(Reply(404, error))
    with pytest.raises(ProviderError, match=f"'nope' not found at {server.url}") as info:
        await make_client(model="nope").complete([Message("user", "x")])
    assert info.value.status == 404


async def test_connection_refused_names_base_url(make_client: MakeClient) -> None:
    url = closed_port_url()
    with pytest.raises(ProviderError, match=f"could not reach {url}") as info:
        await make_client(base_url=url).complete([Message("user", "x")])
    assert info.value.status is None


def test_split_system_without_system_messages() -> None:
    system, turns = split_system([Message("user", "a"), Message("assistant", "b")])
    assert system == ""
    assert turns == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]


def test_missing_sdk_asks_for_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # makes `import anthropic` fail
    with pytest.raises(ConfigError, match=r"pip install 'rlmx\[anthropic\]'"):
        AnthropicClient(model=MODEL, api_key="k")


async def test_aclose_is_idempotent(make_client: MakeClient) -> None:
    client = make_client()
    await client.aclose()
    await client.aclose()


def test_resolve_model_anthropic_needs_key() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        resolve_model(f"anthropic:{MODEL}", settings=Settings(env={}))


async def test_resolve_model_anthropic_uses_settings(server: FakeServer) -> None:
    server.push(Reply(200, messages_reply("resolved")))
    env = {"ANTHROPIC_API_KEY": "sk-ant-settings", "ANTHROPIC_BASE_URL": server.url}
    client = resolve_model(f"anthropic:{MODEL}", settings=Settings(env=env))
    try:
        assert isinstance(client, AnthropicClient)
        result = await client.complete([Message("user", "x")])
    finally:
        await client.aclose()
    assert result.text == "resolved"
    assert sent_key(server.requests[0].headers) == "sk-ant-settings"
