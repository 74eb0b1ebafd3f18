"""Errors as the API shows them: ``{"error": "<one line>"}`` with a status code per
class of the one error tree, the same one-line reasons as the CLI."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    ConfigError,
    JobNotFoundError,
    JobStateError,
    OcrbatchError,
    OutputError,
    StoreError,
    WorkerStartError,
    one_line,
    reason,
)

log = structlog.get_logger("ocrbatch.api")

__all__ = ["ApiError", "install_error_handlers", "status_of"]

_STATUS: tuple[tuple[type[OcrbatchError], int], ...] = (
    (ConfigError, 422),
    (OutputError, 422),
    (JobNotFoundError, 404),
    (JobStateError, 409),
    (StoreError, 503),
    (WorkerStartError, 503),
)


class ApiError(Exception):
    """An error of the API itself (auth, confinement, limits): a status and one line."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def status_of(exc: OcrbatchError) -> int:
    """The HTTP status of an ocrbatch error (500: a bug)."""
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OcrbatchError)
    async def _ours(_: Request, exc: OcrbatchError) -> JSONResponse:
        return error(status_of(exc), exc.message)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected_error")
        return error(500, f"unexpected error (a bug, see the server's log): {reason(exc)}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))
