"""Sub-calls from the worker, on the host: validation, answers, and the record replays use.

Every ``call`` frame is untrusted: :func:`parse_call` checks its shape and types and keeps only
the known arguments. A successful cell's calls are recorded (a key per request, the reply), so
that a restarted worker can replay the cell with the answers served from the record
(:class:`ReplayBook`) instead of asking a model again.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rlmx.context import ContextInput
from rlmx.sandbox import protocol
from rlmx.sandbox.base import HostFunctions

MAX_INFLIGHT_CALLS = 64
CONTEXT_REF = {"ref": "context"}


@dataclass(slots=True)
class Record:
    """A successful cell, kept to be replayed into a new worker."""

    code: str
    digest: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class ReplayBook:
    """Sub-call answers of one recorded cell, served by request instead of by order."""

    def __init__(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self._answers: dict[str, deque[dict[str, Any]]] = {}
        for key, reply in calls:
            self._answers.setdefault(key, deque()).append(reply)
        self.diverged: str | None = None

    def answer(self, key: str) -> dict[str, Any]:
        answers = self._answers.get(key)
        if answers:
            return answers.popleft()
        self.diverged = "it made a sub-call it had not made the first time"
        return {"ok": False, "etype": "RuntimeError", "emsg": "replay: no recorded answer"}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def call_key(fn: str, args: dict[str, Any]) -> str:
    blob = json.dumps([fn, args], sort_keys=True, ensure_ascii=False)
    return digest(blob)


def is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def parse_call(message: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """Validate a ``call`` frame from the worker; raises ValueError/TypeError if malformed."""
    call_id, fn, args = message.get("id"), message.get("fn"), message.get("args")
    if not isinstance(call_id, int) or isinstance(call_id, bool):
        raise TypeError("call id must be an int")
    if fn not in protocol.SUB_CALLS or not isinstance(args, dict):
        raise ValueError(f"unknown sub-call {str(fn)[:40]!r}")
    model = args.get("model")
    if model is not None and not isinstance(model, str):
        raise TypeError("model must be a str")
    if fn == "llm_query_batched":
        if not is_str_list(args.get("prompts")):
            raise TypeError("prompts must be a list of str")
        return call_id, fn, {"prompts": args["prompts"], "model": model}
    if fn == "llm_map":
        return call_id, fn, _parse_map(args, model)
    if not isinstance(args.get("prompt"), str):
        raise TypeError("prompt must be a str")
    if fn == "llm_query":
        return call_id, fn, {"prompt": args["prompt"], "model": model}
    context = args.get("context")
    valid = context is None or isinstance(context, str) or is_str_list(context)
    if not valid and context != CONTEXT_REF:
        raise TypeError("context must be a str, a list of str or the session's context")
    return call_id, fn, {"prompt": args["prompt"], "context": context}


def _parse_map(args: dict[str, Any], model: str | None) -> dict[str, Any]:
    labels, examples = args.get("labels"), args.get("examples")
    if not isinstance(args.get("instruction"), str) or not is_str_list(args.get("items")):
        raise TypeError("llm_map needs an instruction (str) and items (a list of str)")
    if labels is not None and not is_str_list(labels):
        raise TypeError("labels must be a list of str")
    valid_pairs = isinstance(examples, list) and all(
        is_str_list(pair) and len(pair) == 2 for pair in examples
    )
    if examples is not None and not valid_pairs:
        raise TypeError("examples must be a list of [item, answer] pairs of str")
    return {
        "instruction": args["instruction"],
        "items": args["items"],
        "labels": labels,
        "model": model,
        "examples": examples,
    }


def invoke(
    host: HostFunctions | None, context: ContextInput, fn: str, args: dict[str, Any]
) -> dict[str, Any]:
    """Answer a validated sub-call through the host's functions; failures become replies."""
    try:
        if host is None:
            raise RuntimeError("the sandbox was closed")
        value: str | list[str] | list[str | None]
        if fn == "llm_query":
            value = host.llm_query(args["prompt"], args["model"])
        elif fn == "llm_query_batched":
            value = list(host.llm_query_batched(args["prompts"], args["model"]))
        elif fn == "llm_map":
            value = host.llm_map(
                args["instruction"],
                args["items"],
                args["labels"],
                args["model"],
                [(a, b) for a, b in args["examples"] or ()],
            )
        else:
            sub_context = context if args["context"] == CONTEXT_REF else args["context"]
            value = host.rlm_query(args["prompt"], sub_context)
        answers = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) or (fn == "llm_map" and v is None) for v in answers):
            raise TypeError(f"{fn} returned {type(value).__name__}, not text")
        return {"ok": True, "value": value}
    except BaseException as exc:  # the model sees the failure, as in the in-process REPL
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return {"ok": False, "etype": type(exc).__name__, "emsg": str(text)}
