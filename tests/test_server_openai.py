"""``/v1/chat/completions`` through the OpenAI SDK itself: rlmx as a drop-in model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from .conftest import repl
from .test_server_support import Served, make_config, serve

LONG = "Chapter 1\n" + "filler line\n" * 500 + "The vault code is ZETA-42.\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(make_config(tmp_path, token="tok"))


def client_for(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url + "/v1", api_key="tok", max_retries=0, timeout=30)


def finder(served: Served, **kwargs: float) -> str:
    spec = served.script(
        "finder.json",
        repl("import re\nprint(re.search(r'code is (\\S+)\\.', context).group(1))"),
        repl("FINAL(re.search(r'code is (\\S+)\\.', context).group(1))"),
        **kwargs,  # type: ignore[arg-type]
    )
    return "rlm:" + spec


def test_a_chat_completion_runs_an_rlm_over_the_long_message(served: Served) -> None:
    model = finder(served)
    with client_for(served) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=[
                {"role": "system", "content": "Answer with the code only."},
                {"role": "user", "content": LONG},
            ],
            temperature=0,
        )
        completion = raw.parse()
        run_id = raw.headers["x-rlmx-run-id"]
    assert completion.choices[0].message.content == "ZETA-42"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == model
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    with served.client(headers={"Authorization": "Bearer tok"}) as http:
        run = http.get(f"/v1/runs/{run_id}").json()
        assert run["source"] == "openai"
        assert run["context"]["chars"] == len(LONG)  # the long message is the context
        assert "Answer with the code only." in run["query"]  # the rest travels in the query


def test_streaming_sends_chunks_and_usage(served: Served) -> None:
    with client_for(served) as client:
        stream = client.chat.completions.create(
            model=finder(served),
            messages=[{"role": "user", "content": LONG}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "ZETA-42"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0


def test_models_lists_rlm(served: Served) -> None:
    with client_for(served) as client:
        assert "rlm" in [m.id for m in client.models.list()]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model": "gpt-5"}, openai.NotFoundError, "use 'rlm'"),
        ({"model": "rlm:nope:x"}, openai.UnprocessableEntityError, "unknown provider"),
        ({"n": 2}, openai.BadRequestError, "n must be 1"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            openai.BadRequestError,
            "tools",
        ),
        (
            {"messages": [{"role": "system", "content": "x"}]},
            openai.BadRequestError,
            "no user message",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:,"}}],
                    }
                ]
            },
            openai.BadRequestError,
            "text only",
        ),
        ({"extra_body": {"frobnicate": 1}}, openai.UnprocessableEntityError, "frobnicate"),
        (
            {"extra_body": {"rlm": {"limits": {"max_depth": -1}}}},
            openai.UnprocessableEntityError,
            "max_depth",
        ),
    ],
)
def test_bad_chat_requests_are_openai_errors(
    served: Served, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    request: dict[str, object] = {"model": "rlm", "messages": [{"role": "user", "content": "hi"}]}
    request.update(kwargs)
    with client_for(served) as client, pytest.raises(error, match=message):
        client.chat.completions.create(**request)  # type: ignore[call-overload]


def test_a_run_that_fails_is_a_502(served: Served) -> None:
    spec = served.script("empty.json")  # no responses: the first call fails
    with (
        client_for(served) as client,
        pytest.raises(openai.InternalServerError, match="status error"),
    ):
        client.chat.completions.create(
            model="rlm:" + spec, messages=[{"role": "user", "content": "hi"}]
        )


def test_a_client_that_goes_away_cancels_its_run(served: Served) -> None:
    spec = served.script("slow.json", repl("print(1)"), latency_s=30)
    headers = {"Authorization": "Bearer tok"}
    body = {"model": "rlm:" + spec, "messages": [{"role": "user", "content": "hi"}]}
    with served.client(headers=headers) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/chat/completions", json=body, timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            (run,) = http.get("/v1/runs").json()["runs"]
            if run["status"] == "cancelled":
                break
            time.sleep(0.1)
        assert run["status"] == "cancelled"
        assert run["error"] == "the client disconnected"


def test_response_format_json_schema_validates_the_answer(served: Served) -> None:
    spec = served.script(
        "typed.json",
        repl("FINAL('{\"code\": 42}')"),  # the wrong type: corrected once
        repl(
            "import json, re\ncode = re.search(r'code is (\\S+)\\.', context)[1]\n"
            "FINAL(json.dumps({'code': code}))"
        ),
    )
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string"}},
        "required": ["code"],
    }
    with client_for(served) as client:
        completion = client.chat.completions.create(
            model="rlm:" + spec,
            messages=[{"role": "user", "content": LONG}],
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
            extra_body={"rlm": {"session": False}},
        )
        assert completion.choices[0].message.content == '{"code": "ZETA-42"}'
        with pytest.raises(openai.BadRequestError, match="response_format"):
            client.chat.completions.create(
                model="rlm:" + spec,
                messages=[{"role": "user", "content": LONG}],
                response_format={"type": "json_schema", "json_schema": {"schema": {"type": 7}}},
            )
