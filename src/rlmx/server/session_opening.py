"""Opening one of the server's sessions: its context from where it came, its models and limits
from how it was opened, and a live :class:`~rlmx.sessions.Session` over the run store."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from anyio import to_thread

from rlmx.config import Limits
from rlmx.context import Context
from rlmx.errors import RlmxError
from rlmx.rlm import RLM
from rlmx.server.config import ServerConfig
from rlmx.server.contexts import ContextBlobs, gather_context
from rlmx.server.errors import ApiError
from rlmx.server.runs import RunManager
from rlmx.server.session_files import NAME, SessionOrigin
from rlmx.sessions import Session, SessionPolicy
from rlmx.trajectory.store import RunStore


@dataclass(eq=False)
class LiveSession:
    """A session open in this server: its RLM (models, recorder), the session, the limits it
    was opened with, and the ``source`` its runs are recorded under."""

    rlm: RLM
    session: Session
    limits: Limits
    source: str

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.session.aclose()
        with contextlib.suppress(Exception):
            await self.rlm.aclose()


class SessionOpener:
    """Turns a session's name, origin and context into a :class:`LiveSession`."""

    def __init__(
        self, *, store: RunStore, runs: RunManager, blobs: ContextBlobs, config: ServerConfig
    ) -> None:
        self.store = store
        self.runs = runs
        self.blobs = blobs
        self.config = config
        self.policy = SessionPolicy(
            worker_idle_s=config.session_idle_s,
            expire_idle_s=config.session_expire_s,
            max_stored_bytes=config.session_max_bytes,
        )

    def limits(self, origin: SessionOrigin, overrides: dict[str, Any]) -> Limits:
        """The server's limits with the session's, then the question's, fields over them."""
        try:
            return dataclasses.replace(self.config.limits, **{**origin.limits, **overrides})
        except (RlmxError, TypeError) as exc:
            raise ApiError(422, f"limits: {exc}", param="limits") from None

    async def open(
        self, name: str, origin: SessionOrigin, context: Context, limits: Limits
    ) -> LiveSession:
        """The session ``name`` over ``context``: continued from the store if it is there.
        Its model specs are checked again (the allowed roots may have changed)."""
        model = self.runs.check_spec(origin.model, "model")
        sub_model = self.runs.check_spec(origin.sub_model, "sub_model")
        source = "openai" if origin.kind == "chat" else "server"
        rlm = self.runs.build(model, sub_model, limits, self.runs.recorder(source))
        opening = partial(rlm.session, context, name=name, store=self.store, policy=self.policy)
        try:
            session = await to_thread.run_sync(opening)
        except RlmxError as exc:
            await rlm.aclose()
            raise ApiError(409, f"session {name!r}: {exc}", param="name") from None
        return LiveSession(rlm, session, limits, source)

    async def gather(self, name: str, origin: SessionOrigin) -> tuple[Context, list[str]]:
        """The session's context opened again from its uploads and paths, and the notes."""
        opening = partial(
            gather_context,
            self.blobs,
            self.config.allowed_roots,
            context_ids=origin.context_ids,
            paths=origin.paths,
            text=None,
        )
        try:
            context, notes = await to_thread.run_sync(opening)
        except ApiError as exc:
            raise ApiError(
                403 if exc.status == 403 else 409,
                f"session {name!r} cannot be reopened: its context is gone ({exc.message})",
                param=exc.param,
                code="session_context_gone",
            ) from None
        if not isinstance(context, Context):  # gather_context opens uploads and paths
            raise ApiError(409, f"session {name!r} has no context to reopen", param="name")
        return context, notes


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ApiError(
            422,
            f"{name!r} is not a session name: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            param="name",
        )
    return name


def same_context(name: str, expected: str, context: Context) -> None:
    if context.describe().id != expected:
        raise ApiError(
            409,
            f"session {name!r} was opened over another context ({expected[:12]}, not "
            f"{context.describe().id[:12]}): its files changed, or another text was sent; "
            f"delete it (DELETE /v1/sessions/{name}) and open a new one",
            param="name",
            code="session_context_changed",
        )


def unknown(name: str) -> ApiError:
    return ApiError(
        404,
        f"no session {name!r} (it may have expired): list sessions with GET /v1/sessions",
        param="name",
        code="session_not_found",
    )


def taken(name: str) -> ApiError:
    return ApiError(
        409,
        f"a session named {name!r} exists: ask it (POST /v1/sessions/{name}/questions), "
        "or delete it first",
        param="name",
    )
