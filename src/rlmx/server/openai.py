"""``POST /v1/chat/completions``: rlmx as a drop-in OpenAI model.

The model name is ``rlm`` (the server's default models) or ``rlm:<root model spec>``. The
longest user message becomes the run's ``context``; the other messages, if any, travel in the
query. The answer comes back as the assistant message; usage counts the whole recursion tree.
A conversation that goes on from an answer over the same context continues that answer's
session, its REPL and history (:mod:`rlmx.server.chats`); the ``X-Rlmx-Session`` header names it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rlmx.engine.answers import shape_of
from rlmx.errors import RlmxError
from rlmx.server.chats import ChatAsk, ask_in_session, read_turn, shown_answer
from rlmx.server.errors import ApiError, error_body
from rlmx.server.runs import RunSpec
from rlmx.server.schemas import ChatRequest
from rlmx.server.services import Services, require_json, services
from rlmx.types import RunResult

router = APIRouter(prefix="/v1", tags=["openai"])
Svc = Annotated[Services, Depends(services)]

KEEPALIVE_S = 10.0


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


async def _start(svc: Services, body: ChatRequest) -> tuple[str, str | None]:
    """Start the request's run, in its conversation's session unless sessions are off:
    (run id, session name or None)."""
    if (body.n or 1) > 1:
        raise ApiError(400, "rlm models return one choice: n must be 1", param="n")
    if body.tools or body.functions:
        raise ApiError(400, "rlm models do not call tools: leave out 'tools'", param="tools")
    root = _root_spec(svc, body.model)
    sub = svc.runs.check_spec(body.rlm.sub_model, "rlm.sub_model")
    turn = read_turn(body.messages)
    output = _response_schema(body.response_format)
    try:
        limits = body.rlm.limits.apply(svc.config.limits)
    except RlmxError as exc:
        raise ApiError(422, str(exc), param="rlm.limits") from None
    wanted = body.rlm.session
    if wanted is False or (wanted is None and not svc.config.chat_sessions):
        spec = RunSpec(turn.query, turn.context, root, sub, limits, "openai", output)
        return await svc.runs.start(spec), None
    ask = ChatAsk(
        root=body.model.partition(":")[2] or None,
        sub=body.rlm.sub_model,
        limits=body.rlm.limits.model_dump(exclude_none=True),
        named=wanted if isinstance(wanted, str) else None,
        output=output,
    )
    return await ask_in_session(svc.sessions, turn, ask)


def _response_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks the answer to match (None: free text). The
    answer is then validated, with one corrective turn, and sent as JSON."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    schema = (response_format or {}).get("json_schema", {})
    schema = schema.get("schema") if isinstance(schema, dict) else None
    if kind != "json_schema" or not isinstance(schema, dict):
        raise ApiError(
            400,
            "response_format must be {'type': 'text'}, {'type': 'json_object'} or "
            "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}",
            param="response_format",
        )
    try:
        shape_of(schema)
    except ValueError as exc:
        raise ApiError(
            400, f"response_format's schema is not usable: {exc}", param="response_format"
        ) from None
    return schema


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
    answer = shown_answer(result)
    if answer is not None:
        return answer, "stop" if result.status == "completed" else "length"
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
    run_id, session = await _start(svc, body)
    headers = {"X-Rlmx-Run-Id": run_id}
    if session is not None:
        headers["X-Rlmx-Session"] = session
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
