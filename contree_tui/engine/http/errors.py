"""Errors in the spec's shape, `{"error": ..., "status": ...}`, for every failure the app can meet.

EngineError carries its own status (400 by default, 404, 409, 422, ...); Starlette's HTTPException covers
unknown paths and methods; anything else becomes a 500 whose body names only the exception type, so no
traceback or host path leaks to a client (the traceback goes to the server's log).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contree_tui.engine.models import EngineError

log = logging.getLogger("contree_tui.engine.http")


class ApiError(EngineError):
    """An EngineError raised by the HTTP layer itself, optionally with extra response headers."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, status=status)
        self.headers = headers or {}


def error_response(status: int, message: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


async def engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    return error_response(exc.status, str(exc), getattr(exc, "headers", None))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, dict(exc.headers or {}))


class CatchAll:
    """Outermost middleware: an unexpected exception becomes a 500 Error JSON (if nothing was sent yet)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # the stream already started: the client sees a cut stream
            body = json.dumps({"error": f"internal server error ({type(exc).__name__})", "status": 500}).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
