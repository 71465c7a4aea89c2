"""Endpoint pools against real HTTP servers on loopback: routing, limits, health, failover."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from rlmx import RLM
from rlmx.cli.main import main
from rlmx.config import Settings
from rlmx.errors import ConfigError, ProviderError
from rlmx.providers.pool import PoolClient, PoolLease, PoolPolicy
from rlmx.providers.pool_spec import Endpoint, parse_pool
from rlmx.providers.registry import resolve_model
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.events import SubCall
from rlmx.types import Message

from .conftest import ListRecorder, repl, scripted
from .conftest_http import FakeServer, Reply, Seen, chat_reply, closed_port_url

ASK = [Message("user", "hello")]
FAST = PoolPolicy(backoff_s=0.3, max_backoff_s=0.3, probe_timeout_s=2.0, timeout_s=10.0)


class ModelServer(FakeServer):
    """A fake OpenAI-compatible server that answers after ``delay_s``, counts the calls it
    holds at once, answers probes (``GET /v1/models``) and can be broken (503 to everything)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.broken = False
        self.active = 0
        self.peak = 0
        self.probes = 0
        self._count = threading.Lock()
        self.responder = self._answer

    @property
    def base(self) -> str:
        return f"{self.url}/v1"

    @property
    def posts(self) -> int:
        return sum(1 for r in self.requests if r.method == "POST")

    def _answer(self, seen: Seen) -> Reply:
        with self._count:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay_s)
        finally:
            with self._count:
                self.active -= 1
        if self.broken:
            return Reply(503, {"error": {"message": "overloaded"}})
        return Reply(200, chat_reply(f"from {self.url}", prompt_tokens=10, completion_tokens=2))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self
        base = super()._handler_class()

        class Handler(base):  # type: ignore[valid-type,misc]
            def do_GET(self) -> None:
                server.probes += 1
                status = 503 if server.broken else 200
                data = json.dumps({"object": "list", "data": [{"id": "m"}]}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture
def servers() -> Iterator[list[ModelServer]]:
    started: list[ModelServer] = []
    yield started
    for server in started:
        server.stop()


def serve_models(servers: list[ModelServer], count: int, delay_s: float = 0.0) -> list[ModelServer]:
    new = [ModelServer(delay_s).start() for _ in range(count)]
    servers.extend(new)
    return new


def pool_of(*urls: str | Endpoint, policy: PoolPolicy = FAST) -> PoolClient:
    return PoolClient(list(urls), model="m", preset="vllm", policy=policy)


async def test_load_is_spread_and_each_call_counted_once(servers: list[ModelServer]) -> None:
    backends = serve_models(servers, 3, delay_s=0.2)
    pool = pool_of(*(s.base for s in backends))
    answers = await asyncio.gather(*(pool.complete(ASK) for _ in range(24)))
    await pool.aclose()
    assert [s.posts for s in backends] == [8, 8, 8]
    assert {a.model for a in answers} == {pool.spec}
    assert {a.endpoint for a in answers} == {s.base for s in backends}
    stats = pool.stats()
    assert [s.calls for s in stats] == [8, 8, 8]
    assert [s.usage.prompt_tokens for s in stats] == [80, 80, 80]
    assert all(s.in_flight == 0 and s.healthy and s.mean_latency_s >= 0.2 for s in stats)


async def test_ties_go_to_the_faster_endpoint(servers: list[ModelServer]) -> None:
    slow, fast = serve_models(servers, 1, delay_s=0.15) + serve_models(servers, 1)
    pool = pool_of(slow.base, fast.base)
    for _ in range(2):  # one call each: both have a recent latency now
        await pool.complete(ASK)
    for _ in range(6):
        assert (await pool.complete(ASK)).endpoint == fast.base
    await pool.aclose()
    assert slow.posts == 1


async def test_the_limit_per_endpoint_holds(servers: list[ModelServer]) -> None:
    backends = serve_models(servers, 2, delay_s=0.2)
    pool = pool_of(*(Endpoint(s.base, max_in_flight=2) for s in backends))
    started = time.perf_counter()
    await asyncio.gather(*(pool.complete(ASK) for _ in range(12)))
    took = time.perf_counter() - started
    await pool.aclose()
    assert [s.peak for s in backends] == [2, 2]
    assert [s.posts for s in backends] == [6, 6]
    assert took >= 0.6  # 12 calls, 4 at a time, 0.2 s each


async def test_a_dead_endpoint_fails_over_and_gets_no_more_traffic(
    servers: list[ModelServer],
) -> None:
    (live,) = serve_models(servers, 1)
    dead = closed_port_url() + "/v1"
    pool = pool_of(dead, live.base)  # the first call goes to the first endpoint: the dead one
    answers = [await pool.complete(ASK) for _ in range(5)]
    await pool.aclose()
    assert {a.endpoint for a in answers} == {live.base}
    assert all(a.usage.calls == 1 for a in answers)
    by_url = {s.url: s for s in pool.stats()}
    assert (by_url[dead].failures, by_url[dead].calls, by_url[dead].healthy) == (1, 0, False)
    assert (by_url[live.base].calls, by_url[live.base].failures) == (5, 0)
    assert by_url[dead].usage.calls == 0


async def test_an_endpoint_comes_back_after_its_probe(servers: list[ModelServer]) -> None:
    flaky, steady = serve_models(servers, 2)
    flaky.broken = True
    pool = pool_of(flaky.base, steady.base)
    assert (await pool.complete(ASK)).endpoint == steady.base  # 503 at flaky, moved over
    assert flaky.posts == 1
    for _ in range(3):
        await pool.complete(ASK)
    assert flaky.posts == 1  # out for its back-off
    await asyncio.sleep(0.35)
    await pool.complete(ASK)  # the back-off has ended: a probe, which fails
    await asyncio.sleep(0.05)
    assert (flaky.probes, flaky.posts) == (1, 1)
    flaky.broken = False
    await asyncio.sleep(0.35)
    await pool.complete(ASK)  # a second probe, which succeeds
    await asyncio.sleep(0.05)
    assert flaky.probes == 2
    answered = {(await pool.complete(ASK)).endpoint for _ in range(4)}
    await pool.aclose()
    assert flaky.base in answered
    assert pool.stats()[0].healthy


async def test_a_call_waits_for_an_endpoint_that_comes_back(servers: list[ModelServer]) -> None:
    (only,) = serve_models(servers, 1)
    only.broken = True
    pool = pool_of(only.base)
    with pytest.raises(ProviderError, match="every endpoint of the pool tried"):
        await pool.complete(ASK)
    only.broken = False
    started = time.perf_counter()
    answer = await pool.complete(ASK)  # waits out the back-off, probes, then calls
    await pool.aclose()
    assert answer.endpoint == only.base
    assert 0.2 <= time.perf_counter() - started < 2.0
    assert only.probes == 1


async def test_a_refused_request_is_not_failed_over(servers: list[ModelServer]) -> None:
    first, second = serve_models(servers, 2)
    first.push(Reply(400, {"error": {"message": "bad request: max_tokens too large"}}))
    pool = pool_of(first.base, second.base)
    with pytest.raises(ProviderError, match="max_tokens too large"):
        await pool.complete(ASK)
    await pool.aclose()
    assert second.posts == 0
    assert pool.stats()[0].healthy


async def test_every_endpoint_down_is_one_error() -> None:
    urls = [closed_port_url() + "/v1", closed_port_url() + "/v1"]
    pool = pool_of(*urls)
    with pytest.raises(ProviderError) as caught:
        await pool.complete(ASK)
    await pool.aclose()
    assert "could not reach" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert [s.failures for s in pool.stats()] == [1, 1]


def test_a_failed_sub_call_is_retried_elsewhere_and_counted_once(
    servers: list[ModelServer],
) -> None:
    first, second = serve_models(servers, 2)
    first.push(Reply(500, {"error": {"message": "CUDA out of memory"}}))
    spec = f"pool:vllm:m@{first.base},{second.base}"
    recorder = ListRecorder()
    rlm = RLM(
        model=scripted(repl("FINAL(llm_query('hi'))")),
        sub_model=spec,
        recorder=recorder,
        sandbox=InProcessRepl,
        settings=Settings(env={}),
    )
    result = rlm.run("q", "some context")
    assert result.status == "completed"
    assert result.answer == f"from {second.url}"
    assert result.usage.sub.calls == 1
    assert result.usage.sub.prompt_tokens == 10
    (call,) = recorder.of(SubCall)
    assert (call.model, call.endpoint) == (spec, second.base)
    assert (first.posts, second.posts) == (1, 1)


def test_specs_and_files_name_pools(tmp_path: Path) -> None:
    settings = Settings(env={"VLLM_API_KEY": "k1", "GPU2_KEY": "k2"})
    config = parse_pool(
        "pool:vllm:Qwen/Qwen2.5-7B@http://a:8000/v1/,http://b:8000/v1", settings=settings
    )
    assert (config.preset.name, config.model) == ("vllm", "Qwen/Qwen2.5-7B")
    assert [(e.url, e.api_key) for e in config.endpoints] == [
        ("http://a:8000/v1", "k1"),
        ("http://b:8000/v1", "k1"),
    ]
    toml = tmp_path / "pool.toml"
    toml.write_text(
        'model = "ollama:qwen2.5:7b"\nmax_in_flight = 4\nbackoff_s = 2\nendpoints = [\n'
        '  "http://a:11434/v1",\n'
        '  { url = "http://b:11434/v1", max_in_flight = 16, api_key_env = "GPU2_KEY" },\n]\n'
    )
    config = parse_pool(f"pool:{toml}", settings=settings)
    assert (config.preset.name, config.model, config.policy.backoff_s) == (
        "ollama",
        "qwen2.5:7b",
        2,
    )
    assert [(e.max_in_flight, e.api_key) for e in config.endpoints] == [(4, None), (16, "k2")]
    as_json = tmp_path / "pool.json"
    as_json.write_text(json.dumps({"model": "llamacpp:q", "endpoints": ["http://c:8080/v1"]}))
    assert parse_pool(f"pool:{as_json}", settings=settings).preset.choice_grammar


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pool:vllm:m", "must look like pool:vllm:MODEL@"),
        ("pool:nope:m@http://a/v1", "presets: openai"),
        ("pool:vllm:m@ftp://a/v1", r"not an http\(s\) URL"),
        ("pool:vllm:m@http://a/v1,http://a/v1", "names an endpoint twice"),
        ("pool:/no/such/pool.toml", "cannot read the pool file"),
    ],
)
def test_bad_pool_specs_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_model(spec, settings=Settings(env={}))


def test_bad_pool_files_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    for text, message in [
        ("model = ", "not valid"),
        ('model = "vllm:m"\nendpoints = []', "endpoints must be a list"),
        ('model = "vllm:m"\nendpoints = ["http://a/v1"]\nbackof_s = 1', "unknown keys backof_s"),
        ('model = "vllm:m"\nendpoints = [{url = "http://a/v1", api_key_env = "NOPE"}]', "NOPE"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            parse_pool(f"pool:{bad}", settings=Settings(env={}))


async def test_specs_share_one_pool_per_process(servers: list[ModelServer]) -> None:
    (backend,) = serve_models(servers, 1)
    spec = f"pool:vllm:m@{backend.base}"
    one = resolve_model(spec, settings=Settings(env={}))
    two = resolve_model(spec, settings=Settings(env={}))
    assert isinstance(one, PoolLease)
    assert isinstance(two, PoolLease)
    assert one.pool is two.pool
    await one.complete(ASK)
    await one.aclose()
    await two.complete(ASK)  # still open: the other lease holds it
    await two.aclose()
    assert two.stats()[0].calls == 2


def test_several_base_urls_make_a_pool(servers: list[ModelServer]) -> None:
    backends = serve_models(servers, 2)
    joined = ",".join(s.base for s in backends)
    client = resolve_model("vllm:m", settings=Settings(env={}), base_url=joined)
    assert isinstance(client, PoolLease)
    assert client.spec == "vllm:m"
    from_env = resolve_model("vllm:m", settings=Settings(env={"VLLM_BASE_URL": joined}))
    assert isinstance(from_env, PoolLease)
    assert from_env.pool is client.pool


def test_cli_runs_on_a_pool(
    tmp_path: Path, servers: list[ModelServer], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = serve_models(servers, 2)
    root = tmp_path / "root.json"
    root.write_text(json.dumps({"responses": [repl("FINAL(llm_query('hi'))")]}))
    context = tmp_path / "c.txt"
    context.write_text("text")
    trace = tmp_path / "t.jsonl"
    argv = ["run", "q", "-c", str(context), "-m", f"scripted:{root}", "--sub-model", "vllm:m"]
    argv += ["--base-url", first.base, "--base-url", second.base, "--no-db", "-q"]
    assert main([*argv, "--trace", str(trace), "--sandbox", "none"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("from http://127.0.0.1:")
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    (call,) = [e for e in events if e["type"] == "sub_call"]
    assert call["endpoint"] in (first.base, second.base)


def test_cli_refuses_a_bad_pool_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = tmp_path / "c.txt"
    context.write_text("text")
    code = main(["run", "q", "-c", str(context), "-m", "pool:vllm:m", "--no-db", "-q"])
    _, err = capsys.readouterr()
    assert code != 0
    assert "must look like pool:vllm:MODEL@" in err
    assert "Traceback" not in err


def test_the_server_runs_its_pool_and_refuses_its_clients_pools(
    tmp_path: Path, servers: list[ModelServer]
) -> None:
    pytest.importorskip("fastapi")
    from .test_server_support import follow, make_config, serve

    first, second = serve_models(servers, 2)
    spec = f"pool:vllm:m@{first.base},{second.base}"
    for served in serve(make_config(tmp_path, sub_model=spec)):
        root = served.script("root.json", repl("FINAL(llm_query('hi'))"))
        with served.client() as client:
            body = {"query": "q", "text": "context", "model": root}
            foreign = client.post(
                "/v1/runs", json={**body, "sub_model": "pool:vllm:m@http://10.1.2.3/v1"}
            )
            assert foreign.status_code == 422
            assert "named by the server" in foreign.text
            response = client.post("/v1/runs", json={**body, "sub_model": spec})
            assert response.status_code == 202, response.text
            events = [m.data for m in follow(client, response.json()["id"]) if m.event == "message"]
    (call,) = [e for e in events if e["type"] == "sub_call"]
    assert call["model"] == spec
    assert call["endpoint"] in (first.base, second.base)
    assert events[-1]["result"]["status"] == "completed"
