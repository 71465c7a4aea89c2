"""FunctionModel: a test model whose replies come from a function, sync or async."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rlmx import RLM
from rlmx.errors import ConfigError
from rlmx.providers import CallOptions, FunctionModel, LLMClient
from rlmx.providers.scripted import estimate_tokens
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.types import Completion, Message, Usage

from .conftest import repl

QUESTION = [Message("system", "s" * 40), Message("user", "what is 2+2?")]


def shout(messages: Sequence[Message], options: CallOptions) -> str:
    return messages[-1].content.upper()


async def test_a_sync_function_answers_and_usage_is_estimated_like_the_scripted_model() -> None:
    model = FunctionModel(shout)
    reply = await model.complete(QUESTION, max_tokens=5)
    assert isinstance(model, LLMClient)
    assert model.spec == reply.model == "function:shout"
    assert reply.text == "WHAT IS 2+2?"
    assert reply.usage == Usage(
        prompt_tokens=10 + estimate_tokens("what is 2+2?"),
        completion_tokens=estimate_tokens("WHAT IS 2+2?"),
        calls=1,
    )
    assert (reply.cost_usd, reply.finish_reason) == (0.0, "stop")
    assert model.calls == [QUESTION]
    assert model.options == [{"max_tokens": 5}]


async def test_an_async_function_sees_the_options_and_may_return_a_completion() -> None:
    seen: list[CallOptions] = []

    async def pick(messages: Sequence[Message], options: CallOptions) -> Completion:
        seen.append(options)
        choice = next(iter(options.get("choices", ["?"])))
        return Completion(text=choice, usage=Usage(calls=1), model="mine", cost_usd=0.5)

    model = FunctionModel(pick, name="picker")
    reply = await model.complete(QUESTION, choices=["yes", "no"], seed=3)
    assert seen == [{"choices": ["yes", "no"], "seed": 3}]
    assert (reply.text, reply.cost_usd, reply.usage.calls) == ("yes", 0.5, 1)
    assert reply.model == "function:picker"  # the spec, as from every client


async def test_unknown_options_and_bad_replies_are_refused() -> None:
    model = FunctionModel(lambda messages, options: 42, name="bad")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match="function:bad: unknown option"):
        await model.complete(QUESTION, top_k=3)  # type: ignore[call-arg]
    assert model.calls == []
    with pytest.raises(TypeError, match="must return a str or a Completion"):
        await model.complete(QUESTION)


def test_a_function_model_drives_a_whole_run() -> None:
    def root(messages: Sequence[Message], options: CallOptions) -> str:
        if any("ZETA" in m.content for m in messages if m.role == "user"):
            return repl("FINAL('ZETA-42')")
        return repl("print(context[:40])")

    model = FunctionModel(root)
    result = RLM(model=model, sandbox=InProcessRepl).run("What is the code?", "code: ZETA-42\n")
    assert (result.status, result.answer) == ("completed", "ZETA-42")
    assert len(model.calls) == 2
