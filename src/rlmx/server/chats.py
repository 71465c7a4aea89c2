"""Chat conversations as sessions: ``/v1/chat/completions`` keeps one per conversation.

A chat client sends the whole conversation every time. Its longest user message is the run's
``context``; when a request goes on from an answer this server gave over that same context
(the same content hash), it continues that answer's session (its REPL, its history) and asks
only the new messages. The conversation is known by a key: a hash of the model specs, the
context's id and every message up to the last answer (the context message counted by its id),
taken after each answer and looked up on the next request. So the same conversation goes on
in its session, while a new conversation over the same context (no earlier answer, or another
one) starts a new session. A client may also name a session (``rlm.session``), or ask for a
one-off run (``rlm.session: false``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from rlmx.context import Context, as_context
from rlmx.server.errors import ApiError
from rlmx.server.schemas import ChatMessage
from rlmx.server.session_files import SessionOrigin
from rlmx.server.sessions import SessionManager
from rlmx.types import RunResult

SOLE_QUERY = "Do what the text in `context` asks, and answer it."
CONTEXT_MARK = "\x00context"

Transcript = tuple[tuple[str, str], ...]


def message_text(message: ChatMessage, index: int) -> str:
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


@dataclass(frozen=True, slots=True)
class Turn:
    """A chat request read as a conversation: ``context`` (its longest user message),
    ``query`` (the whole conversation as a question, for a run that starts here),
    ``followup`` (only the messages after the last answer, for a session that goes on; None
    when no answer follows the context), and the ``transcript`` up to that answer and whole."""

    context: str
    query: str
    followup: str | None
    before: Transcript
    whole: Transcript


def read_turn(messages: Sequence[ChatMessage]) -> Turn:
    texts = [(m.role, message_text(m, i)) for i, m in enumerate(messages)]
    users = [i for i, (role, _) in enumerate(texts) if role == "user"]
    if not users:
        raise ApiError(400, "the conversation has no user message", param="messages")
    longest = max(users, key=lambda i: len(texts[i][1]))
    others = [f"[{role}]\n{text}" for i, (role, text) in enumerate(texts) if i != longest and text]
    query = SOLE_QUERY
    if others:
        query = (
            "Answer the user's message, which is the variable `context`, in the light of the "
            "rest of the conversation:\n\n" + "\n\n".join(others)
        )
    marked = tuple(
        (role, CONTEXT_MARK if i == longest else text.strip())
        for i, (role, text) in enumerate(texts)
    )
    answered = [i for i, (role, _) in enumerate(texts) if role == "assistant" and i > longest]
    tail = texts[answered[-1] + 1 :] if answered else []
    followup = None
    if any(role == "user" for role, _ in tail):
        followup = "\n\n".join(
            text if role == "user" else f"[{role}]\n{text}" for role, text in tail if text
        )
    before = marked[: answered[-1] + 1] if answered else ()
    return Turn(texts[longest][1], query, followup, before, marked)


def chat_key(root: str | None, sub: str | None, context_id: str, transcript: Transcript) -> str:
    blob = json.dumps([root, sub, context_id, [list(m) for m in transcript]], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def shown_answer(result: RunResult | None) -> str | None:
    """The text a client is given as the assistant's message, if any."""
    if result is None:
        return None
    if result.status == "completed" and result.value is not None:
        return result.value_json()
    if result.status == "completed":
        return result.answer or ""
    if result.status != "error" and result.answer:
        return result.answer  # a limit cut the run short: its best partial answer
    return None


@dataclass(frozen=True, slots=True)
class ChatAsk:
    """What a chat request asks of the sessions: its models (the client's specs), limits and
    the session it names (a name, or None: the conversation's own)."""

    root: str | None
    sub: str | None
    limits: dict[str, object]
    named: str | None
    output: dict[str, Any] | None = None  # a JSON schema the answer must match


async def ask_in_session(sessions: SessionManager, turn: Turn, ask: ChatAsk) -> tuple[str, str]:
    """Queue the turn in its conversation's session (opened if need be): (run id, session)."""
    context = await to_thread.run_sync(_opened, turn.context)
    context_id = context.describe().id
    name = ask.named
    query = turn.query
    if name is None and turn.followup is not None:
        name = sessions.chat_name(chat_key(ask.root, ask.sub, context_id, turn.before))
        if name is not None and not await sessions.exists(name):
            name = None
        if name is not None:
            query = turn.followup
    elif name is not None and turn.followup is not None and await sessions.exists(name):
        query = turn.followup
    if name is None or not await sessions.exists(name):
        origin = SessionOrigin(kind="chat", model=ask.root, sub_model=ask.sub, limits=ask.limits)
        name = (await sessions.create(name, context, origin, []))["name"]
        query = turn.query
    session: str = name

    async def remember(result: RunResult) -> None:
        answer = shown_answer(result)
        if answer is not None:
            whole = (*turn.whole, ("assistant", answer.strip()))
            await sessions.remember(session, chat_key(ask.root, ask.sub, context_id, whole))

    asked = await sessions.ask(
        session, query, dict(ask.limits), context=context, on_result=remember, output=ask.output
    )
    return asked.run_id, asked.name


def _opened(text: str) -> Context:
    context = as_context(text)
    context.describe()  # hashes the text, here in a worker thread
    return context
