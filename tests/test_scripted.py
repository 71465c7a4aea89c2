from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmx.errors import ConfigError, ScriptExhaustedError
from rlmx.providers.scripted import ScriptedModel, estimate_tokens
from rlmx.types import Message


async def test_rules_answer_before_responses_are_consumed() -> None:
    model = ScriptedModel.from_dict(
        {"responses": ["first", "second"], "rules": [{"contains": "ping", "reply": "pong"}]}
    )
    assert (await model.complete([Message("user", "say ping")])).text == "pong"
    assert (await model.complete([Message("user", "hello")])).text == "first"
    assert (await model.complete([Message("user", "ping again")])).text == "pong"
    assert (await model.complete([Message("user", "hello")])).text == "second"
    with pytest.raises(ScriptExhaustedError, match="no response left"):
        await model.complete([Message("user", "hello")])


async def test_rules_match_only_the_last_user_message() -> None:
    model = ScriptedModel.from_dict(
        {"responses": ["plain"], "rules": [{"contains": "x", "reply": "r"}]}
    )
    messages = [Message("user", "x marks"), Message("assistant", "ok"), Message("user", "no match")]
    assert (await model.complete(messages)).text == "plain"


async def test_usage_is_estimated_from_text() -> None:
    model = ScriptedModel(["abcdefgh"])
    completion = await model.complete([Message("system", "s" * 40), Message("user", "u" * 8)])
    assert completion.usage.prompt_tokens == 10 + 2
    assert completion.usage.completion_tokens == estimate_tokens("abcdefgh") == 2
    assert completion.cost_usd == 0.0


def test_from_file_and_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"responses": ["a"], "latency_s": 0.1}))
    assert ScriptedModel.from_file(good).remaining == 1
    with pytest.raises(ConfigError, match="not found"):
        ScriptedModel.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ScriptedModel.from_file(bad)
    with pytest.raises(ConfigError, match="list of strings"):
        ScriptedModel.from_dict({"responses": [1, 2]})
    with pytest.raises(ConfigError, match="'contains' and 'reply'"):
        ScriptedModel.from_dict({"rules": [{"contains": "a"}]})


async def test_every_option_is_recorded_and_unknown_ones_refused() -> None:
    model = ScriptedModel(["a"])
    await model.complete([Message("user", "q")], seed=1, json_schema={"type": "object"})
    assert model.options == [{"seed": 1, "json_schema": {"type": "object"}}]
    with pytest.raises(ConfigError, match="scripted:script: unknown option"):
        await model.complete([Message("user", "q")], top_k=3)  # type: ignore[call-arg]
    assert model.remaining == 0
    assert len(model.calls) == 1
