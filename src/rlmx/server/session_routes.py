"""``/v1/sessions``: open a session over a context, ask it questions that share one REPL, list,
read and delete sessions. A question is a run: follow it with the routes of ``/v1/runs``."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends

from rlmx.context import Context
from rlmx.server.contexts import gather_context
from rlmx.server.errors import ApiError
from rlmx.server.schemas import QuestionAsked, QuestionRequest, SessionCreated, SessionRequest
from rlmx.server.services import Services, require_json, services
from rlmx.server.session_files import SessionOrigin

router = APIRouter(prefix="/v1", tags=["sessions"])
Svc = Annotated[Services, Depends(services)]


@router.post(
    "/sessions",
    status_code=201,
    response_model=SessionCreated,
    dependencies=[Depends(require_json)],
)
async def create_session(body: SessionRequest, svc: Svc) -> SessionCreated:
    """Open a session over a context (uploads and server-side paths, opened as for a run). It
    is stored at once, and kept across restarts of the server until it expires."""
    svc.runs.check_spec(body.model, "model")
    svc.runs.check_spec(body.sub_model, "sub_model")
    if not body.context_ids and not body.paths:
        raise ApiError(
            422,
            "no context given: pass context_ids (upload a text with POST /v1/contexts) or paths",
            param="context_ids",
        )
    origin = SessionOrigin(
        kind="sources",
        context_ids=tuple(body.context_ids),
        paths=tuple(body.paths),
        model=body.model,
        sub_model=body.sub_model,
        limits=body.limits.model_dump(exclude_none=True),
    )
    context, notes = await to_thread.run_sync(
        lambda: gather_context(
            svc.blobs,
            svc.config.allowed_roots,
            context_ids=body.context_ids,
            paths=body.paths,
            text=None,
        )
    )
    assert isinstance(context, Context)  # uploads and paths are opened, never read whole
    info = await svc.sessions.create(body.name, context, origin, notes)
    name = info["name"]
    return SessionCreated(
        **info, url=f"/v1/sessions/{name}", questions_url=f"/v1/sessions/{name}/questions"
    )


@router.post(
    "/sessions/{name}/questions",
    status_code=202,
    response_model=QuestionAsked,
    dependencies=[Depends(require_json)],
)
async def ask_session(name: str, body: QuestionRequest, svc: Svc) -> QuestionAsked:
    """Ask the session a question: a run over its context in its REPL, where the variables of
    earlier questions are still set. The questions of a session go one at a time. Follow the
    run at ``events_url``; after a restart of the server, the session is reopened first (its
    REPL rebuilt by replaying its cells, no model asked again)."""
    overrides = body.limits.model_dump(exclude_none=True)
    asked = await svc.sessions.ask(name, body.query, overrides)
    return QuestionAsked(
        id=asked.run_id,
        status="queued",
        url=f"/v1/runs/{asked.run_id}",
        events_url=f"/v1/runs/{asked.run_id}/events",
        notes=asked.notes,
        session=asked.name,
    )


@router.get("/sessions")
async def list_sessions(svc: Svc) -> dict[str, Any]:
    """Every stored session, the most recently used first."""
    return {"sessions": await svc.sessions.rows()}


@router.get("/sessions/{name}")
async def get_session(name: str, svc: Svc) -> dict[str, Any]:
    """A session with its questions and answers."""
    return await svc.sessions.describe(name)


@router.delete("/sessions/{name}")
async def delete_session(name: str, svc: Svc) -> dict[str, Any]:
    """Cancel the session's questions, stop its REPL worker and delete it from the store."""
    return await svc.sessions.delete(name)
