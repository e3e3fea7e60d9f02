"""Request body caps per route, enforced while the body arrives: past the cap the answer is 413 Error JSON.

Without a cap a 300 MB upload was read into memory whole (engine RSS 676 MB) and a 50 MB field rode into
the store. JSON bodies are parsed in memory, so they get a small cap: the largest legitimate spawn request
the tests make (5,000 args and 4,500 injected files, tests/engine/test_keepers.py) is ~0.5 MB, and 4 MiB
leaves room for a few MiB of stdin. Uploads are streamed to disk (engine.add_file_stream) and only need a
cap on disk use, the engine's `max_upload_bytes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contree_tui.engine.http.errors import ApiError

JSON_BODY_LIMIT = 4 << 20
# A stdin write is JSON too (base64 in `value`), and the CLI sends stdin in 512 KiB chunks; 16 MiB is
# 32 such chunks in one request.
STDIN_BODY_LIMIT = 16 << 20


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body: larger than this route's limit of {limit} bytes", status=413)


def body_limit_for(method: str, path: str, upload_limit: int) -> int:
    """The most bytes a request to `path` may carry."""
    if method == "POST" and path.rstrip("/").endswith(("/v1/files", "/v1/x/files/batch")):
        return upload_limit
    if method == "POST" and path.endswith("/stdin"):
        return STDIN_BODY_LIMIT
    return JSON_BODY_LIMIT


class BodyLimit:
    """ASGI middleware: a declared Content-Length past the cap is refused before reading; a body that grows
    past it while streaming (chunked, or a lying length) raises BodyTooLarge from `receive`, which the
    route's read turns into the 413."""

    def __init__(self, app: ASGIApp, upload_limit: Callable[[], int]) -> None:
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope["method"], scope["path"], self.upload_limit())
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _refuse(send, limit)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _refuse(send: Send, limit: int) -> None:
    error = BodyTooLarge(limit)
    body = json.dumps({"error": str(error), "status": 413}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
