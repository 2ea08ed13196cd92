"""Every error leaves the server as `{"error": {"message", "type", "param", "code"}}`.

That is the shape OpenAI clients parse. Messages say what was wrong with the request;
unexpected failures answer a generic 500 and the traceback goes to the server log only.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

logger = logging.getLogger("polyhead.serve")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    408: "timeout",
    415: "invalid_request_error",
    421: "invalid_request_error",
    422: "invalid_request_error",
    431: "request_header_fields_too_large",
    500: "server_error",
    499: "client_closed_request",
    503: "service_unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """A request the server refuses, with the status and message the client gets."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"), "param": param, "code": code}}


def error_response(status: int, message: str, *, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


async def send_error(send: Send, status: int, message: str, *, code: str | None = None, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer an error straight from ASGI middleware, before any route runs."""
    payload = json.dumps(error_body(status, message, code=code)).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", dict: "an object", type(None): "null"}


def _json_type(value: object) -> str:
    return JSON_TYPES.get(type(value), type(value).__name__)


UNION_TAGS = ("str", "list[str]")


def _where(problem: dict) -> tuple:
    """The field path without FastAPI's 'body' prefix and pydantic's union-branch tags."""
    return tuple(part for part in problem.get("loc", ()) if part != "body" and part not in UNION_TAGS)


def _input_message(problems: list[dict]) -> str:
    """One message for the `input` union (a string, or a list of strings)."""
    for problem in problems:
        where = _where(problem)
        if problem.get("type") == "missing":
            return "field 'input' is required"
        if len(where) == 2 and isinstance(where[1], int):
            bad = problem.get("input")
            hint = " (token arrays are not supported: send text)" if isinstance(bad, (int, list)) else ""
            return f"input[{where[1]}] must be a string, got {_json_type(bad)}{hint}"
    return f"'input' must be a string or a list of strings, got {_json_type(problems[0].get('input'))}"


def validation_message(error: RequestValidationError) -> tuple[int, str, str | None]:
    """Status, one readable message and the offending field of a body validation failure."""
    problems = list(error.errors())
    for problem in problems:
        if problem.get("type") == "json_invalid":
            detail = problem.get("ctx", {}).get("error", "")
            return 400, f"the request body is not valid JSON{': ' + str(detail) if detail else ''}", None
    first = problems[0]
    where = _where(first)
    if not where:
        if isinstance(first.get("input"), bytes):
            return 415, "send the body as JSON with 'Content-Type: application/json'", None
        if first.get("type") == "missing":
            return 400, "the request needs a JSON object body", None
        return 422, f"the request body must be a JSON object, got {_json_type(first.get('input'))}", None
    field = str(where[0])
    if field == "input":
        return 422, _input_message([p for p in problems if _where(p)[:1] == ("input",)]), "input"
    if first.get("type") == "extra_forbidden":
        return 422, f"unknown field {field!r}", field
    path = field + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where[1:])
    return 422, f"{path}: {first.get('msg', 'invalid value')}", field


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through the one error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, param = validation_message(exc)
        return error_response(status, message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no route {request.url.path!r}; see /docs"
        elif exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body is not valid JSON (send UTF-8 encoded JSON)"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal server error")
