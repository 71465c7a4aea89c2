"""A replay model for tests and demos: ``scripted:PATH.json``.

The script is ``{"responses": [str, ...], "rules": [{"contains": str, "reply": str}],
"latency_s": float}``. Each call first tries the rules, in order, against the last user
message (a rule may answer any number of times); otherwise it consumes the next response.
A rule may also give ``"top_logprobs": {token: logprob}``, reported to a call that asks for
``top_logprobs`` (as a model with logprobs would).
Running out of responses raises :class:`~rlmx.errors.ScriptExhaustedError`.
Token counts are estimated at four characters a token.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

from rlmx.errors import ConfigError, ScriptExhaustedError
from rlmx.providers.base import CallOptions, ModelProfile
from rlmx.providers.options import honoured_options
from rlmx.types import Completion, Message, Usage


@dataclass(frozen=True, slots=True)
class Rule:
    contains: str
    reply: str
    top_logprobs: tuple[tuple[str, float], ...] = ()


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def estimated_usage(messages: Sequence[Message], reply: str) -> Usage:
    """One call's usage, its tokens estimated from the text at four characters a token."""
    return Usage(
        prompt_tokens=sum(estimate_tokens(m.content) for m in messages),
        completion_tokens=estimate_tokens(reply),
        calls=1,
    )


class ScriptedModel:
    """A deterministic :class:`~rlmx.providers.base.LLMClient` that replays a script."""

    def __init__(
        self,
        responses: Sequence[str] = (),
        *,
        rules: Sequence[Rule] = (),
        latency_s: float = 0.0,
        name: str = "script",
        profile: ModelProfile | None = None,
    ) -> None:
        self._responses = list(responses)
        self._rules = tuple(rules)
        self._latency_s = latency_s
        self._name = name
        self._profile = profile or ModelProfile(context_window=1_000_000)
        self._lock = threading.Lock()
        self._next = 0
        self.calls: list[list[Message]] = []
        self.options: list[CallOptions] = []  # the options of each call, in order

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedModel:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"scripted model file not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"scripted model file {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, name=str(path))

    @classmethod
    def from_dict(cls, data: object, *, name: str = "script") -> ScriptedModel:
        if not isinstance(data, dict):
            raise ConfigError(f"scripted model {name}: expected a JSON object")
        responses = data.get("responses", [])
        rules = data.get("rules", [])
        latency = data.get("latency_s", 0.0)
        if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
            raise ConfigError(f"scripted model {name}: 'responses' must be a list of strings")
        if not isinstance(rules, list):
            raise ConfigError(f"scripted model {name}: 'rules' must be a list")
        parsed = []
        for rule in rules:
            if not (
                isinstance(rule, dict)
                and isinstance(rule.get("contains"), str)
                and isinstance(rule.get("reply"), str)
            ):
                raise ConfigError(
                    f"scripted model {name}: each rule needs string 'contains' and 'reply'"
                )
            parsed.append(Rule(rule["contains"], rule["reply"], _logprobs(rule, name)))
        if not isinstance(latency, int | float) or latency < 0:
            raise ConfigError(f"scripted model {name}: 'latency_s' must be a number >= 0")
        return cls(responses, rules=parsed, latency_s=float(latency), name=name)

    @property
    def spec(self) -> str:
        return f"scripted:{self._name}"

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    @property
    def remaining(self) -> int:
        return len(self._responses) - self._next

    def _reply_for(self, messages: Sequence[Message]) -> tuple[str, tuple[tuple[str, float], ...]]:
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        for rule in self._rules:
            if rule.contains in last_user:
                return rule.reply, rule.top_logprobs
        with self._lock:
            if self._next >= len(self._responses):
                raise ScriptExhaustedError(
                    f"scripted model {self._name} has no response left "
                    f"(used all {len(self._responses)}); add responses or a matching rule"
                )
            reply = self._responses[self._next]
            self._next += 1
        return reply, ()

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        honoured_options(self.spec, options)  # a replay model takes every option
        self.calls.append(list(messages))
        self.options.append(options)
        reply, top_logprobs = self._reply_for(messages)
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        return Completion(
            text=reply,
            usage=estimated_usage(messages, reply),
            model=self.spec,
            latency_s=self._latency_s,
            cost_usd=0.0,
            finish_reason="stop",
            top_logprobs=top_logprobs if options.get("top_logprobs") else (),
        )

    async def aclose(self) -> None:
        return None


def _logprobs(rule: dict[str, Any], name: str) -> tuple[tuple[str, float], ...]:
    given = rule.get("top_logprobs", {})
    if not isinstance(given, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v <= 0 for v in given.values()
    ):
        raise ConfigError(
            f"scripted model {name}: a rule's 'top_logprobs' maps tokens to log-probabilities <= 0"
        )
    return tuple((str(token), float(value)) for token, value in given.items())
