"""What the in-process llama.cpp server is sent and what it streams back.

A request is the OpenAI-style chat body llama.cpp's server reads, with its own fields for
``choices`` (a GBNF ``grammar``), ``json_schema`` and ``seed``. It is always streamed: the
stream callback is the only way to stop a generation nobody waits for any more, so its
slot is freed for the next call. :class:`StreamedReply` gathers the chunks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlmx.errors import ConfigError
from rlmx.providers.grammar import choice_grammar
from rlmx.types import Message

DEFAULT_MAX_TOKENS = 1024
# The largest llama.cpp sampling seed; 0xFFFFFFFF asks it for a random one.
_MAX_SEED = 0xFFFFFFFE
# llama.cpp reports up to this many alternatives per token; more cost time for nothing.
MAX_TOP_LOGPROBS = 20


def build_request(
    spec: str, messages: Sequence[Message], options: Mapping[str, Any]
) -> dict[str, Any]:
    """The streamed chat request for ``messages``; bad option values are ConfigErrors
    naming ``spec``. ``options`` are checked call options, None values left out."""
    choices = options.get("choices")
    grammar = None if choices is None else _choices_grammar(spec, choices)
    max_tokens, temperature = _sampling(spec, options, choices if grammar else None)
    request: dict[str, Any] = {
        "messages": [m.to_dict() for m in messages],
        "max_tokens": max_tokens,
        "temperature": temperature,
        "cache_prompt": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        # progress chunks during a long prompt give the stream callback a chance to stop
        "return_progress": True,
    }
    stop = options.get("stop")
    if stop:
        request["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if grammar is not None:
        request["grammar"] = grammar
    schema = options.get("json_schema")
    if schema is not None:
        if grammar is not None:
            raise ConfigError(f"{spec}: choices and json_schema exclude each other")
        if not isinstance(schema, Mapping):
            raise ConfigError(f"{spec}: json_schema must be a dict (a JSON schema)")
        request["json_schema"] = dict(schema)
    seed = options.get("seed")
    if seed is not None:
        request["seed"] = _checked_seed(spec, seed)
    top = options.get("top_logprobs")
    if top:
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise ConfigError(f"{spec}: top_logprobs must be a positive integer")
        # Probabilities from the logits before sampling, so before any grammar: the
        # model's own preference among the allowed answers.
        request["logprobs"] = True
        request["top_logprobs"] = min(top, MAX_TOP_LOGPROBS)
    return request


def _sampling(
    spec: str, options: Mapping[str, Any], choices: Sequence[str] | None
) -> tuple[int, float]:
    """``max_tokens`` (by default enough for the longest choice) and ``temperature``."""
    max_tokens = options.get("max_tokens")
    if max_tokens is None:
        # A choice's tokens are at most its bytes, plus the end-of-generation token.
        longest = max((len(c.encode()) for c in choices), default=0) if choices else 0
        max_tokens = longest + 1 if choices else DEFAULT_MAX_TOKENS
    max_tokens = int(max_tokens)
    temperature = options.get("temperature")
    temperature = 0.0 if temperature is None else float(temperature)
    if max_tokens <= 0 or temperature < 0:
        raise ConfigError(
            f"{spec}: max_tokens must be positive and temperature 0 or more "
            f"(got {max_tokens}, {temperature})"
        )
    return max_tokens, temperature


def _checked_seed(spec: str, seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise ConfigError(f"{spec}: seed must be an integer from 0 to {_MAX_SEED}, got {seed!r}")
    return seed


def _choices_grammar(spec: str, choices: object) -> str:
    if isinstance(choices, str | bytes) or not isinstance(choices, Sequence):
        raise ConfigError(f"{spec}: choices must be a list of strings, not {choices!r}")
    if not all(isinstance(choice, str) for choice in choices):
        raise ConfigError(f"{spec}: every choice must be a string, got {list(choices)!r}")
    try:
        return choice_grammar(choices)
    except ValueError as exc:
        raise ConfigError(f"{spec}: {exc}") from None


@dataclass
class StreamedReply:
    """The pieces of one streamed reply, gathered on the worker thread."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    status: int | None = None
    top_logprobs: list[tuple[str, float]] = field(default_factory=list)

    def add(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            raise TypeError(f"expected a dict, got {type(chunk).__name__}")
        error = chunk.get("error")
        if error is not None:
            if isinstance(error, dict):
                self.error = str(error.get("message") or error)
                code = error.get("code")
                self.status = code if isinstance(code, int) else None
            else:
                self.error = str(error)
            return
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                self.parts.append(content)
            if not self.top_logprobs:
                self.top_logprobs = _first_top_logprobs(choice.get("logprobs"))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
            self.timings = chunk.get("timings") or {}


def _first_top_logprobs(logprobs: Any) -> list[tuple[str, float]]:
    """The alternatives of the first token in a chunk's ``logprobs``, if any."""
    content = (logprobs or {}).get("content") if isinstance(logprobs, dict) else None
    if not content:
        return []
    return [
        (str(entry["token"]), float(entry["logprob"]))
        for entry in content[0].get("top_logprobs") or ()
    ]
