"""``/v1/contexts`` and ``/v1/runs``: upload a context, start, list, follow and cancel runs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rlmx.errors import RlmxError
from rlmx.server.contexts import gather_context
from rlmx.server.errors import ApiError
from rlmx.server.runs import RunSpec
from rlmx.server.schemas import RunCreated, RunRequest
from rlmx.server.services import Services, require_json, services
from rlmx.server.sse import run_events

router = APIRouter(prefix="/v1")
Svc = Annotated[Services, Depends(services)]

CANCEL_WAIT_S = 10.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/contexts", status_code=201, openapi_extra=_UPLOAD_BODY, tags=["contexts"])
async def upload_context(
    request: Request,
    svc: Svc,
    name: Annotated[str | None, Query(max_length=500, description="a label")] = None,
) -> JSONResponse:
    """Upload a text context as the raw body (``Content-Type: application/octet-stream``).

    The id is the sha256 of the bytes: uploading the same text twice stores it once.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/octet-stream":
        raise ApiError(
            415,
            "upload the context as the raw body with 'Content-Type: application/octet-stream', "
            "e.g. curl --data-binary @book.txt -H 'Content-Type: application/octet-stream'",
        )
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    info = await svc.blobs.upload(request.stream(), name=name, declared=declared)
    return JSONResponse(info, status_code=201)


@router.get("/contexts/{context_id}", tags=["contexts"])
async def get_context(context_id: str, svc: Svc) -> dict[str, Any]:
    info = await to_thread.run_sync(svc.blobs.info, context_id)
    if info is None:
        raise ApiError(404, f"no context {context_id!r}", param="context_id")
    return info


@router.post(
    "/runs",
    status_code=202,
    response_model=RunCreated,
    dependencies=[Depends(require_json)],
    tags=["runs"],
)
async def start_run(body: RunRequest, request: Request, svc: Svc) -> RunCreated:
    """Start a run; it goes on in the background. Follow it at ``events_url``. ``notes`` say
    what opening the context skipped or replaced, as ``rlmx run`` prints them."""
    model = svc.runs.check_spec(body.model, "model")
    sub_model = svc.runs.check_spec(body.sub_model, "sub_model")
    try:
        limits = body.limits.apply(svc.config.limits)
    except RlmxError as exc:
        raise ApiError(422, str(exc), param="limits") from None
    context, notes = await to_thread.run_sync(
        lambda: gather_context(
            svc.blobs,
            svc.config.allowed_roots,
            context_ids=body.context_ids,
            paths=body.paths,
            text=body.text,
        )
    )
    spec = RunSpec(body.query, context, model, sub_model, limits, source="server")
    run_id = await svc.runs.start(spec)
    return RunCreated(
        id=run_id,
        status="queued",
        url=f"/v1/runs/{run_id}",
        events_url=f"/v1/runs/{run_id}/events",
        notes=notes,
    )


@router.get("/runs", tags=["runs"])
async def list_runs(
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str, Query(max_length=500, description="text in the query or id")] = "",
) -> dict[str, Any]:
    rows = await to_thread.run_sync(
        lambda: svc.store.list_runs(limit=limit, offset=offset, status=status, search=q)
    )
    return {"runs": [svc.run_dict(r) for r in rows], "limit": limit, "offset": offset}


@router.get("/runs/{run_id}", tags=["runs"])
async def get_run(run_id: str, svc: Svc) -> dict[str, Any]:
    return svc.run_dict(await svc.run_or_404(run_id))


@router.get(
    "/runs/{run_id}/events",
    tags=["runs"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_events_stream(
    run_id: str,
    svc: Svc,
    after: Annotated[int, Query(ge=-1, description="send events numbered above this")] = -1,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The run's events as Server-Sent Events: stored ones, then live ones until it ends."""
    await svc.run_or_404(run_id)
    if last_event_id is not None and last_event_id.strip().lstrip("-").isdigit():
        after = max(after, int(last_event_id))
    stream = run_events(svc.store, svc.hub, run_id, after=after, heartbeat_s=svc.config.heartbeat_s)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get(
    "/runs/{run_id}/trace",
    tags=["runs"],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def run_trace(run_id: str, svc: Svc) -> StreamingResponse:
    """Every stored event of the run as JSON Lines, the format of ``rlmx run --trace``."""
    await svc.run_or_404(run_id)

    async def lines() -> AsyncIterator[bytes]:
        after = -1
        while page := await to_thread.run_sync(partial(svc.store.events, run_id, after=after)):
            yield "".join(line + "\n" for _, line in page).encode()
            after = page[-1][0]

    headers = {"Content-Disposition": f'attachment; filename="rlmx-{run_id}.jsonl"'}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


@router.delete("/runs/{run_id}", tags=["runs"])
async def cancel_run(run_id: str, svc: Svc) -> dict[str, Any]:
    """Cancel a queued or running run; answers once it has stopped (or after 10 s)."""
    summary = await svc.run_or_404(run_id)
    if not svc.runs.cancel(run_id, "cancelled by DELETE /v1/runs/" + run_id):
        if summary.active:
            raise ApiError(409, f"run {run_id} is not running in this server", param="id")
        raise ApiError(409, f"run {run_id} already ended ({summary.status})", param="id")
    with contextlib.suppress(TimeoutError):
        await svc.runs.wait(run_id, timeout=CANCEL_WAIT_S)
    return svc.run_dict(await svc.run_or_404(run_id))
