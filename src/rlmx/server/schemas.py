"""Request bodies of the HTTP API. Unknown fields are refused, so a typo never goes unnoticed."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rlmx.config import Limits


class LimitsIn(BaseModel):
    """Limits of one run; any left out take the server's defaults."""

    model_config = ConfigDict(extra="forbid")

    max_iterations: int | None = Field(default=None, ge=1, le=1000)
    max_sub_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    max_depth: int | None = Field(default=None, ge=0, le=8)
    max_output_chars: int | None = Field(default=None, ge=100, le=1_000_000)
    concurrency: int | None = Field(default=None, ge=1, le=64)

    def apply(self, base: Limits) -> Limits:
        return dataclasses.replace(base, **self.model_dump(exclude_none=True))


class RunRequest(BaseModel):
    """Start a run. The context is opened as the CLI opens ``--context``: one upload or file is
    a text (a JSONL file of records with a text field, documents), one directory is read on
    demand and comes alone, several pieces (uploads, files, then text) are documents."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=200_000, description="the question to answer")
    context_ids: list[str] = Field(
        default_factory=list, max_length=1000, description="ids from POST /v1/contexts"
    )
    paths: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="files or folders under the server's --allow-path roots",
    )
    text: str | None = Field(default=None, description="an inline context, for small ones")
    model: str | None = Field(default=None, description="root model spec; default: the server's")
    sub_model: str | None = Field(
        default=None, description="sub-call model spec; default: the root"
    )
    limits: LimitsIn = Field(default_factory=lambda: LimitsIn())


class RunCreated(BaseModel):
    id: str
    status: str
    url: str
    events_url: str
    notes: list[str] = Field(
        default_factory=list,
        description="what opening the context skipped or replaced (files left out, bytes that "
        "were not UTF-8), as the CLI prints them",
    )


class SessionRequest(BaseModel):
    """Open a session: a context given as to a run (uploads and server-side paths; an inline
    text must be uploaded first, so that the session can be reopened after a restart), and the
    models and limits of its questions."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, max_length=64, description="letters, digits, '.', '_', '-'; default: new"
    )
    context_ids: list[str] = Field(
        default_factory=list, max_length=1000, description="ids from POST /v1/contexts"
    )
    paths: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="files or folders under the server's --allow-path roots",
    )
    model: str | None = Field(default=None, description="root model spec; default: the server's")
    sub_model: str | None = Field(
        default=None, description="sub-call model spec; default: the root"
    )
    limits: LimitsIn = Field(default_factory=lambda: LimitsIn())


class SessionCreated(BaseModel):
    name: str
    context_id: str = Field(description="the sha256 id of the session's context")
    context: dict[str, Any] = Field(description="the context's handle: kind, size, previews")
    notes: list[str] = Field(default_factory=list)
    url: str
    questions_url: str


class QuestionRequest(BaseModel):
    """Ask a session: a run over its context in its REPL. ``limits`` apply to this question."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=200_000, description="the question to answer")
    limits: LimitsIn = Field(default_factory=lambda: LimitsIn())


class QuestionAsked(RunCreated):
    session: str


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class RlmOptions(BaseModel):
    """rlmx's own extension of a chat request (``extra_body={"rlm": {...}}`` in the SDK)."""

    model_config = ConfigDict(extra="forbid")

    sub_model: str | None = None
    limits: LimitsIn = Field(default_factory=lambda: LimitsIn())
    session: str | bool | None = Field(
        default=None,
        description="a session name to open or continue; false: a one-off run; default: the "
        "session of this conversation, if it repeats an earlier one's context",
    )


class ChatRequest(BaseModel):
    """An OpenAI chat completion request. The sampling options are accepted and ignored: the
    RLM's models use their own."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="rlm, or rlm:<root model spec>")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int | None = Field(default=None, ge=1)
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    rlm: RlmOptions = Field(default_factory=RlmOptions)
    # Accepted for compatibility, without effect.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    seed: int | None = None
    metadata: dict[str, Any] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tool_choice: Any = None
    function_call: Any = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None
    modalities: list[str] | None = None
    prediction: dict[str, Any] | None = None
    verbosity: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
