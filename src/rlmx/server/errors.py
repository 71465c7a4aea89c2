"""Errors as JSON: ``{"error": {"message", "type", "param", "code"}}`` (the OpenAI shape).

Every 4xx says what was wrong and how to fix it; nothing a client sends reaches a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
}


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(status, message, **extra), status_code=status)


def error_bytes(status: int, message: str) -> bytes:
    return json.dumps(error_body(status, message)).encode()


def _where(loc: tuple[Any, ...]) -> str:
    skip = 1 if loc and loc[0] in ("body", "query", "path", "header") else 0
    parts = [str(p) for p in loc[skip:]]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def describe_validation(errors: list[dict[str, Any]]) -> tuple[int, str, str | None]:
    """The status, one readable message and the first offending parameter."""
    messages: list[str] = []
    first: str | None = None
    for err in errors[:10]:
        kind = err.get("type", "")
        where = _where(tuple(err.get("loc", ())))
        if kind == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "invalid JSON")
            return 400, f"malformed JSON in the request body: {detail}", None
        if kind == "extra_forbidden":
            name = where.rsplit(".", 1)[-1]
            text = f"unknown field {name!r}" + (f" in {where}" if "." in where else "")
        elif kind == "missing" and not where:
            text = "a JSON object body is required"
        elif kind == "missing":
            text = f"missing required field {where!r}"
        elif kind in ("model_attributes_type", "dict_type") and not where:
            text = "the request body must be a JSON object"
        else:
            text = f"{where}: {err.get('msg', 'invalid value')}" if where else str(err.get("msg"))
        messages.append(text)
        first = first or where or None
    if len(errors) > 10:
        messages.append(f"and {len(errors) - 10} more")
    return 422, "; ".join(messages), first


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, param = describe_validation(list(exc.errors()))
        return error_response(status, message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")
