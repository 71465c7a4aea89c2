"""OpenAICompatClient and the registry against a real loopback HTTP server (no mocked SDK)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rlmx.config import Settings
from rlmx.errors import AuthenticationError, ConfigError, ProviderError
from rlmx.providers.base import LLMClient, ModelProfile
from rlmx.providers.openai_compat import OpenAICompatClient
from rlmx.providers.presets import PRESETS
from rlmx.providers.registry import resolve_model
from rlmx.types import Message, Usage

from .conftest_http import FakeServer, Reply, Seen, chat_reply, closed_port_url, running_server

FAST_RETRY = {"retry-after-ms": "10"}  # the SDK honours it instead of backing off 0.5s+
MESSAGES = [Message("system", "be terse"), Message("user", "say hello")]

MakeClient = Callable[..., OpenAICompatClient]


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
    clients: list[OpenAICompatClient] = []

    def make(**overrides: Any) -> OpenAICompatClient:
        args: dict[str, Any] = {
            "preset": PRESETS["openai"],
            "model": "gpt-5-mini",
            "api_key": "sk-test",
            "base_url": f"{server.url}/v1",
            "max_retries": 0,
        }
        args.update(overrides)
        client = OpenAICompatClient(**args)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_completion_maps_text_usage_cost_and_request(
    server: FakeServer, make_client: MakeClient
) -> None:
    server.push(Reply(200, chat_reply("hello there")))
    client = make_client()

    result = await client.complete(MESSAGES, max_tokens=50, temperature=0.2, stop=["END"])

    assert isinstance(client, LLMClient)
    assert client.spec == "openai:gpt-5-mini"
    assert result.text == "hello there"
    assert result.usage == Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=40, calls=1)
    # gpt-5-mini: 60 fresh input at $0.25/M, 40 cached at $0.025/M, 20 output at $2/M.
    assert result.cost_usd == pytest.approx((60 * 0.25 + 40 * 0.025 + 20 * 2.0) / 1e6, rel=1e-12)
    assert result.finish_reason == "stop"
    assert result.model == client.spec == "openai:gpt-5-mini"
    assert result.latency_s > 0

    (seen,) = server.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert seen.body["model"] == "gpt-5-mini"
    assert seen.body["messages"] == [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": "say hello"},
    ]
    # OpenAI's own models take max_completion_tokens (reasoning models reject max_tokens).
    assert seen.body["max_completion_tokens"] == 50
    assert "max_tokens" not in seen.body
    assert seen.body["temperature"] == 0.2
    assert seen.body["stop"] == ["END"]


async def test_self_hosted_gets_max_tokens_placeholder_key_and_only_given_options(
    server: FakeServer, make_client: MakeClient
) -> None:
    server.push(Reply(200, chat_reply("ok", cached_tokens=None)))
    client = make_client(preset=PRESETS["vllm"], model="qwen2.5-7b", api_key=None)

    result = await client.complete([Message("user", "hi")], max_tokens=7, temperature=None)

    (seen,) = server.requests
    assert seen.headers["authorization"] == "Bearer not-needed"
    assert seen.body["max_tokens"] == 7
    assert "temperature" not in seen.body
    assert "stop" not in seen.body
    assert result.usage.cached_tokens == 0
    assert result.cost_usd == 0.0


async def test_top_logprobs_are_asked_for_and_read_from_the_first_token(
    server: FakeServer, make_client: MakeClient
) -> None:
    body = chat_reply("cat")
    alternatives = [
        {"token": "cat", "logprob": -0.1, "bytes": None},
        {"token": "dog", "logprob": -2.5, "bytes": None},
    ]
    first = {"token": "cat", "logprob": -0.1, "bytes": None, "top_logprobs": alternatives}
    body["choices"][0]["logprobs"] = {"content": [first], "refusal": None}
    server.push(Reply(200, body), Reply(200, chat_reply("cat")))
    client = make_client(preset=PRESETS["vllm"], model="m", api_key=None)

    result = await client.complete(MESSAGES, max_tokens=1, top_logprobs=50)
    plain = await client.complete(MESSAGES, max_tokens=1, top_logprobs=5)

    assert result.top_logprobs == (("cat", -0.1), ("dog", -2.5))
    assert plain.top_logprobs == ()  # a server that reports none
    asked, _ = server.requests
    assert (asked.body["logprobs"], asked.body["top_logprobs"]) == (True, 20)  # the API's most


async def test_unknown_model_has_unknown_cost(server: FakeServer, make_client: MakeClient) -> None:
    server.push(Reply(200, chat_reply()))
    result = await make_client(model="mystery-model-9000").complete(MESSAGES)
    assert result.cost_usd is None
    assert result.usage.prompt_tokens == 100


async def test_ollama_is_free(server: FakeServer, make_client: MakeClient) -> None:
    server.push(Reply(200, chat_reply(model="llama3.2")))
    client = make_client(preset=PRESETS["ollama"], model="llama3.2", api_key=None)
    result = await client.complete(MESSAGES)
    assert result.cost_usd == 0.0
    assert client.spec == "ollama:llama3.2"


async def test_null_content_and_empty_choices_are_errors_and_missing_usage_is_unpriced(
    server: FakeServer, make_client: MakeClient
) -> None:
    no_choices = chat_reply()
    no_choices["choices"] = []
    no_usage = chat_reply("x")
    del no_usage["usage"]
    server.push(Reply(200, chat_reply(None, finish_reason="length")), Reply(200, no_choices))
    server.push(Reply(200, no_usage))
    client = make_client()

    # An empty reply would use up the run's iterations unnoticed (tests/test_hardening_limits.py).
    with pytest.raises(ProviderError, match="used up max_tokens"):
        await client.complete(MESSAGES)
    with pytest.raises(ProviderError, match="no choices"):
        await client.complete(MESSAGES)
    unmetered = await client.complete(MESSAGES)

    # No usage reported: the call still counts, but its price is unknown rather than 0.
    assert unmetered.usage == Usage(calls=1)
    assert unmetered.cost_usd is None


async def test_non_json_reply_is_a_provider_error(
    server: FakeServer, make_client: MakeClient
) -> None:
    server.push(Reply(200, "<html>Welcome to nginx</html>"))
    with pytest.raises(ProviderError, match="did not answer with a chat completion") as info:
        await make_client().complete(MESSAGES)
    assert "Welcome to nginx" in str(info.value)


async def test_unknown_option_is_refused_before_any_request(
    server: FakeServer, make_client: MakeClient
) -> None:
    with pytest.raises(ConfigError, match=r"unknown option.*top_p"):
        await make_client().complete(MESSAGES, top_p=0.5)  # type: ignore[call-arg]
    assert server.requests == []


async def test_options_a_server_cannot_honour_are_dropped_with_a_debug_line(
    server: FakeServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.default = Reply(200, chat_reply("yes"))
    vllm = make_client(preset=PRESETS["vllm"], model="m", api_key=None)
    llamacpp = make_client(preset=PRESETS["llamacpp"], model="m", api_key=None)
    with caplog.at_level(logging.DEBUG, logger="rlmx.providers.options"):
        await vllm.complete(MESSAGES, choices=["yes", "no"], json_schema={"type": "object"})
        await llamacpp.complete(MESSAGES, choices=["yes", "no"], seed=3)
    plain, constrained = server.requests
    assert "grammar" not in plain.body
    assert "json_schema" not in plain.body
    assert "response_format" not in plain.body
    assert constrained.body["grammar"] == 'root ::= "yes" | "no"'
    assert constrained.body["seed"] == 3
    ignored = [r.getMessage() for r in caplog.records if "ignores" in r.getMessage()]
    assert ignored == ["vllm:m ignores options ['choices', 'json_schema']"]


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("deepseek", "DEEPSEEK_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
        ("vllm", "VLLM_API_KEY"),
        ("llamacpp", "LLAMACPP_API_KEY"),
    ],
)
async def test_401_names_the_key_variable(
    server: FakeServer, make_client: MakeClient, provider: str, variable: str
) -> None:
    server.push(Reply(401, {"error": {"message": "Incorrect API key provided: sk-te***"}}))
    client = make_client(preset=PRESETS[provider], max_retries=3)

    with pytest.raises(AuthenticationError) as info:
        await client.complete(MESSAGES)

    assert info.value.status == 401
    assert variable in str(info.value)
    assert "refused" in str(info.value)
    assert "Incorrect API key provided" in str(info.value)
    assert len(server.requests) == 1  # credentials errors are not retried


async def test_ollama_auth_error_says_no_key_needed(
    server: FakeServer, make_client: MakeClient
) -> None:
    server.push(Reply(403, {"error": "forbidden"}))
    with pytest.raises(AuthenticationError, match="needs no key") as info:
        await make_client(preset=PRESETS["ollama"], model="llama3.2", api_key=None).complete(
            MESSAGES
        )
    assert info.value.status == 403
    assert server.url in str(info.value)


async def test_404_says_model_not_found_at_base_url(
    server: FakeServer, make_client: MakeClient
) -> None:
    server.push(Reply(404, {"error": {"message": "model 'gpt-9' does not exist"}}))
    with pytest.raises(ProviderError) as info:
        await make_client(model="gpt-9").complete(MESSAGES)
    message = str(info.value)
    assert info.value.status == 404
    assert "'gpt-9' not found at " + f"{server.url}/v1" in message
    assert "does not exist" in message


async def test_400_gives_one_short_line_and_is_not_retried(
    server: FakeServer, make_client: MakeClient
) -> None:
    long_text = "bad request:\n" + "x" * 2000
    server.push(Reply(400, {"error": {"message": long_text}}))
    with pytest.raises(ProviderError) as info:
        await make_client(max_retries=3).complete(MESSAGES)
    message = str(info.value)
    assert info.value.status == 400
    assert "\n" not in message
    assert "bad request: xxx" in message
    assert len(message) < 400
    assert len(server.requests) == 1


async def test_500_then_200_is_retried(server: FakeServer, make_client: MakeClient) -> None:
    server.push(Reply(500, {"error": {"message": "boom"}}, FAST_RETRY), Reply(200, chat_reply()))
    result = await make_client(max_retries=2).complete(MESSAGES)
    assert result.text == "hello"
    assert len(server.requests) == 2
    assert server.requests[1].headers["x-stainless-retry-count"] == "1"
    assert server.requests[1].body == server.requests[0].body


async def test_429_honours_retry_after_and_succeeds(
    server: FakeServer, make_client: MakeClient
) -> None:
    limited = Reply(429, {"error": {"message": "Rate limit reached"}}, FAST_RETRY)
    server.push(limited, limited, Reply(200, chat_reply("after waiting")))
    started = time.perf_counter()
    result = await make_client(max_retries=3).complete(MESSAGES)
    assert result.text == "after waiting"
    assert len(server.requests) == 3
    assert time.perf_counter() - started < 2.0  # 10 ms waits, not the default backoff


async def test_persistent_503_raises_provider_error_after_retries(
    server: FakeServer, make_client: MakeClient
) -> None:
    server.default = Reply(503, {"error": {"message": "upstream overloaded"}}, FAST_RETRY)
    with pytest.raises(ProviderError) as info:
        await make_client(max_retries=2).complete(MESSAGES)
    message = str(info.value)
    assert info.value.status == 503
    assert not isinstance(info.value, AuthenticationError)
    assert message.startswith("openai:gpt-5-mini (HTTP 503): upstream overloaded")
    assert "after 2 retries" in message
    assert len(server.requests) == 3


async def test_connection_refused_names_base_url(make_client: MakeClient) -> None:
    url = f"{closed_port_url()}/v1"
    with pytest.raises(ProviderError) as info:
        await make_client(base_url=url, max_retries=1).complete(MESSAGES)
    assert info.value.status is None
    assert f"could not reach {url}" in str(info.value)
    assert "after 1 retry" in str(info.value)


async def test_timeout_is_a_provider_error(server: FakeServer, make_client: MakeClient) -> None:
    def slow(seen: Seen) -> Reply:
        time.sleep(0.3)
        return Reply(200, chat_reply())

    server.responder = slow
    with pytest.raises(ProviderError, match="timed out") as info:
        await make_client(timeout_s=0.05).complete(MESSAGES)
    assert server.url in str(info.value)


async def test_concurrent_calls_all_succeed(server: FakeServer, make_client: MakeClient) -> None:
    def echo(seen: Seen) -> Reply:
        time.sleep(0.05)  # overlap the requests on the server
        return Reply(200, chat_reply(seen.body["messages"][-1]["content"].upper()))

    server.responder = echo
    client = make_client()
    prompts = [f"question {i}" for i in range(8)]

    results = await asyncio.gather(*(client.complete([Message("user", p)]) for p in prompts))

    assert [r.text for r in results] == [p.upper() for p in prompts]
    assert len(server.requests) == 8
    assert sum((r.usage for r in results), Usage()).calls == 8


async def test_profile_default_and_override(make_client: MakeClient) -> None:
    assert make_client().profile == ModelProfile()
    small = ModelProfile(context_window=8192, small=True)
    assert make_client(profile=small).profile is small


async def test_aclose_is_idempotent(make_client: MakeClient) -> None:
    client = make_client()
    await client.aclose()
    await client.aclose()


# --- registry.resolve_model -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "variable"),
    [
        ("openai:gpt-5-mini", "OPENAI_API_KEY"),
        ("deepseek:deepseek-chat", "DEEPSEEK_API_KEY"),
        ("openrouter:openai/gpt-5-mini", "OPENROUTER_API_KEY"),
    ],
)
def test_resolve_model_missing_key_names_variable(spec: str, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        resolve_model(spec, settings=Settings(env={}))


async def test_resolve_model_presets() -> None:
    ollama = resolve_model("ollama:llama3.2", settings=Settings(env={}))
    deepseek = resolve_model(
        "deepseek:deepseek-chat", settings=Settings(env={"DEEPSEEK_API_KEY": "k"})
    )
    try:
        assert isinstance(ollama, OpenAICompatClient)
        assert ollama.spec == "ollama:llama3.2"
        assert ollama.base_url == "http://localhost:11434/v1"
        assert isinstance(deepseek, OpenAICompatClient)
        assert deepseek.spec == "deepseek:deepseek-chat"
        assert deepseek.base_url == "https://api.deepseek.com/v1"
    finally:
        await ollama.aclose()
        await deepseek.aclose()


async def test_resolve_model_honours_openai_base_url_from_settings(server: FakeServer) -> None:
    server.push(Reply(200, chat_reply("via settings")))
    env = {"OPENAI_API_KEY": "sk-from-settings", "OPENAI_BASE_URL": f"{server.url}/v1"}
    client = resolve_model("openai:gpt-5-mini", settings=Settings(env=env))
    try:
        result = await client.complete(MESSAGES)
    finally:
        await client.aclose()
    assert result.text == "via settings"
    assert server.requests[0].path == "/v1/chat/completions"
    assert server.requests[0].headers["authorization"] == "Bearer sk-from-settings"


async def test_process_environment_does_not_bypass_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", closed_port_url())
    client = resolve_model("openai:gpt-5-mini", settings=Settings(env={"OPENAI_API_KEY": "k"}))
    try:
        assert isinstance(client, OpenAICompatClient)
        assert client.base_url == "https://api.openai.com/v1"
    finally:
        await client.aclose()


async def test_resolve_model_ollama_base_url_and_explicit_override(server: FakeServer) -> None:
    server.default = Reply(200, chat_reply("local answer", model="llama3.2"))
    from_env = resolve_model(
        "ollama:llama3.2", settings=Settings(env={"OLLAMA_BASE_URL": f"{server.url}/v1"})
    )
    explicit = resolve_model(
        "ollama:llama3.2", settings=Settings(env={}), base_url=f"{server.url}/v1"
    )
    try:
        first = await from_env.complete(MESSAGES)
        second = await explicit.complete(MESSAGES)
    finally:
        await from_env.aclose()
        await explicit.aclose()
    assert first.text == second.text == "local answer"
    assert first.cost_usd == second.cost_usd == 0.0
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer not-needed"] * 2


def test_an_rlm_over_http_runs_twice_in_two_event_loops(server: FakeServer) -> None:
    """``RLM.run`` uses a fresh event loop each time; the client must not reuse dead sockets."""
    from rlmx import RLM, Settings
    from rlmx.sandbox.inprocess import InProcessRepl

    server.default = Reply(200, chat_reply('```repl\nFINAL("over http")\n```'))
    settings = Settings(env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{server.url}/v1"})
    rlm = RLM(model="openai:gpt-5-mini", settings=settings, sandbox=InProcessRepl)
    first = rlm.run("q", "some context")
    second = rlm.run("q", "other context")
    assert (first.status, first.answer) == ("completed", "over http")
    assert (second.status, second.answer) == ("completed", "over http")
    assert first.cost_usd is not None
    assert first.cost_usd > 0
    assert len(server.requests) == 2
    asyncio.run(rlm.aclose())
