"""``POST /v1/chat/completions``: rlmx as a drop-in OpenAI model.

The model name is ``rlm`` (the server's default models) or ``rlm:<root model spec>``. The
longest user message becomes the run's ``context``; the other messages, if any, travel in the
query. The answer comes back as the assistant message; usage counts the whole recursion tree.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rlmx.errors import RlmxError
from rlmx.server.errors import ApiError, error_body
from rlmx.server.runs import RunSpec
from rlmx.server.schemas import ChatMessage, ChatRequest
from rlmx.server.services import Services, require_json, services
from rlmx.types import RunResult

router = APIRouter(prefix="/v1", tags=["openai"])
Svc = Annotated[Services, Depends(services)]

SOLE_QUERY = "Do what the text in `context` asks, and answer it."
KEEPALIVE_S = 10.0


def _text(message: ChatMessage, index: int) -> str:
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise ApiError(
                400,
                f"messages[{index}] has a {part.type!r} part: rlm models take text only",
                param=f"messages[{index}].content",
            )
        texts.append(part.text)
    return "\n".join(texts)


def split_messages(messages: list[ChatMessage]) -> tuple[str, str]:
    """The query and the context of a conversation: the longest user message is the context."""
    texts = [(m.role, _text(m, i)) for i, m in enumerate(messages)]
    users = [i for i, (role, _) in enumerate(texts) if role == "user"]
    if not users:
        raise ApiError(400, "the conversation has no user message", param="messages")
    longest = max(users, key=lambda i: len(texts[i][1]))
    others = [f"[{role}]\n{text}" for i, (role, text) in enumerate(texts) if i != longest and text]
    if not others:
        return SOLE_QUERY, texts[longest][1]
    query = (
        "Answer the user's message, which is the variable `context`, in the light of the rest "
        "of the conversation:\n\n" + "\n\n".join(others)
    )
    return query, texts[longest][1]


def _root_spec(svc: Services, model: str) -> str | None:
    name, sep, spec = model.partition(":")
    if name != "rlm" or (sep and not spec):
        raise ApiError(
            404,
            f"model {model!r} does not exist here: use 'rlm' (the server's default models) or "
            "'rlm:<provider:model>', e.g. rlm:openai:gpt-5-mini",
            param="model",
            code="model_not_found",
        )
    return svc.runs.check_spec(spec, "model") if spec else None


async def _start(svc: Services, body: ChatRequest) -> str:
    if (body.n or 1) > 1:
        raise ApiError(400, "rlm models return one choice: n must be 1", param="n")
    if body.tools or body.functions:
        raise ApiError(400, "rlm models do not call tools: leave out 'tools'", param="tools")
    root = _root_spec(svc, body.model)
    sub = svc.runs.check_spec(body.rlm.sub_model, "rlm.sub_model")
    query, context = split_messages(body.messages)
    try:
        limits = body.rlm.limits.apply(svc.config.limits)
    except RlmxError as exc:
        raise ApiError(422, str(exc), param="rlm.limits") from None
    return await svc.runs.start(RunSpec(query, context, root, sub, limits, source="openai"))


def _usage(result: RunResult) -> dict[str, int]:
    total = result.usage.total
    return {
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "total_tokens": total.total_tokens,
    }


def _outcome(result: RunResult | None, run_id: str) -> tuple[str, str]:
    """The answer and finish reason, or an ApiError for a run with nothing to say."""
    if result is None:
        raise ApiError(500, f"run {run_id} was cancelled", code="run_cancelled")
    if result.status == "completed":
        return result.answer or "", "stop"
    if result.status != "error" and result.answer:
        return result.answer, "length"  # a limit cut the run short: its best partial answer
    reason = result.error or "the model never gave an answer"
    raise ApiError(
        502, f"run {run_id} ended with status {result.status}: {reason}", code="run_failed"
    )


async def _until_done(svc: Services, run_id: str, request: Request) -> RunResult | None:
    """The run's result; cancels the run if the client goes away first."""
    waiting = asyncio.ensure_future(svc.runs.wait(run_id))
    try:
        while not waiting.done():
            await asyncio.wait({waiting}, timeout=0.5)
            if not waiting.done() and await request.is_disconnected():
                svc.runs.cancel(run_id, "the client disconnected")
        return waiting.result()
    finally:
        if not waiting.done():
            waiting.cancel()
            svc.runs.cancel(run_id, "the client disconnected")


@router.post("/chat/completions", dependencies=[Depends(require_json)], response_model=None)
async def chat_completions(
    body: ChatRequest, request: Request, svc: Svc
) -> JSONResponse | StreamingResponse:
    run_id = await _start(svc, body)
    headers = {"X-Rlmx-Run-Id": run_id}
    created = int(time.time())
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        stream = _stream(svc, run_id, body.model, created, include_usage)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
    result = await _until_done(svc, run_id, request)
    answer, finish = _outcome(result, run_id)
    assert result is not None
    payload = {
        "id": f"chatcmpl-{run_id}",
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": finish,
            }
        ],
        "usage": _usage(result),
    }
    return JSONResponse(payload, headers=headers)


def _chunk(run_id: str, model: str, created: int, **fields: Any) -> bytes:
    data = {
        "id": f"chatcmpl-{run_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        **fields,
    }
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _stream(
    svc: Services, run_id: str, model: str, created: int, include_usage: bool
) -> AsyncIterator[bytes]:
    """The answer as chat.completion.chunk events; comments keep the line open meanwhile."""
    waiting = asyncio.ensure_future(svc.runs.wait(run_id))
    try:
        start = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        yield _chunk(run_id, model, created, choices=[start])
        while not waiting.done():
            await asyncio.wait({waiting}, timeout=KEEPALIVE_S)
            if not waiting.done():
                yield b": running\n\n"
        result = waiting.result()
        try:
            answer, finish = _outcome(result, run_id)
        except ApiError as exc:
            body = error_body(exc.status, exc.message, code=exc.code)
            yield f"data: {json.dumps(body)}\n\n".encode()
            return
        assert result is not None
        content = {"index": 0, "delta": {"content": answer}, "finish_reason": None}
        yield _chunk(run_id, model, created, choices=[content])
        yield _chunk(
            run_id, model, created, choices=[{"index": 0, "delta": {}, "finish_reason": finish}]
        )
        if include_usage:
            yield _chunk(run_id, model, created, choices=[], usage=_usage(result))
        yield b"data: [DONE]\n\n"
    finally:
        if not waiting.done():
            waiting.cancel()
            svc.runs.cancel(run_id, "the client disconnected")


@router.get("/models")
async def list_models(svc: Svc) -> dict[str, Any]:
    """The model names this endpoint answers to."""
    names = ["rlm"]
    if svc.config.model:
        names.append(f"rlm:{svc.config.model}")
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": 0, "owned_by": "rlmx"} for n in names],
    }
