"""Reading images without running them: tag lookup, metadata, download, archive, list, grep.

Every read goes through a confined helper (engine/inspect.py: the image is its root, it holds no host
privilege), so `..` and symlinks resolve inside the image and never reach a host file. Its answer is
streamed from its pipe to the client as it comes, never waited for synchronously: the engine's loop stays
free whatever the image holds (a FIFO, 200,000 entries, a pathological pattern).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from contree_tui.engine.grep import DEFAULT_MAX_TOTAL, MAX_CONTEXT, MAX_COUNT, MAX_TOTAL, GrepQuery
from contree_tui.engine.http.context import api_path, engine_of
from contree_tui.engine.http.errors import ApiError
from contree_tui.engine.http.params import flag, int_param, path_uuid
from contree_tui.engine.http.serialize import image_json
from contree_tui.engine.inspect import IDLE_SECONDS
from contree_tui.engine.models import Image
from contree_tui.engine.sandbox.helper import HelperProcess


def _image(request: Request) -> Image:
    return engine_of(request).store.get_image(path_uuid(request, "image_uuid", "image"))


def _path(request: Request) -> str:
    path = request.query_params.get("path")
    if not path:
        raise ApiError("path: required, an absolute path inside the image such as /etc/hosts")
    return path


async def inspect_redirect(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(api_path(request, "/inspect/") + query, status_code=307)


async def image_redirect(request: Request) -> Response:
    image_uuid = path_uuid(request, "image_uuid", "image")
    return RedirectResponse(api_path(request, f"/inspect/{image_uuid}/"), status_code=307)


async def find_by_tag(request: Request) -> Response:
    tag = request.query_params.get("tag")
    if not tag:
        raise ApiError("tag: required, e.g. /v1/inspect/?tag=busybox:latest")
    image = engine_of(request).store.image_by_tag(tag)
    return RedirectResponse(api_path(request, f"/inspect/{image.uuid}/"), status_code=302)


async def inspect_image(request: Request) -> Response:
    """The spec's Image, plus our extension `x_engine` (see README, API extensions): what the image added
    and weighs on disk, its layer count, env and workdir. Official clients ignore fields they do not know."""
    image = _image(request)
    return JSONResponse({**image_json(image), "x_engine": await engine_of(request).disk.image_extension(image)})


async def _chunks(helper: HelperProcess, compress: bool = False) -> AsyncIterator[bytes]:
    """The helper's payload (gzip-compressed on the way with `compress`); closing it kills the helper."""
    gzip = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
    async for chunk in helper.chunks(IDLE_SECONDS):  # 256 KiB at most: ~3 ms of the loop's time to deflate
        if gzip is None:
            yield chunk
        elif out := gzip.compress(chunk):
            yield out
    if gzip is not None:
        yield gzip.flush()


class HelperResponse(StreamingResponse):
    """A helper's payload as the response body; the helper is closed however the response ends. A body
    generator that never started (the client left before the first byte) runs no `finally`, and its
    helper would hold one of the engine's helper slots until its lifetime ran out."""

    def __init__(self, helper: HelperProcess, compress: bool = False, **kwargs: Any) -> None:
        super().__init__(_chunks(helper, compress), **kwargs)
        self.helper = helper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.helper.close()


def _sized(header: dict[str, object]) -> dict[str, str]:
    size = header.get("size")
    return {"Content-Length": str(size)} if isinstance(size, int) and size >= 0 else {}


async def download(request: Request) -> Response:
    image, path = _image(request), _path(request)
    header, helper = await engine_of(request).open_in_image(image, "read", path)
    headers = _sized(header)
    media_type = "text/plain; charset=utf-8" if flag(request, "text") else "application/octet-stream"
    if request.method == "HEAD":
        helper.close()
        return Response(status_code=200, headers=headers, media_type=media_type)
    return HelperResponse(helper, headers=headers, media_type=media_type)


def accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            quality = params.strip().removeprefix("q=").strip()
            return quality not in ("0", "0.0", "0.00", "0.000")
    return False


def archive_name(path: str) -> str:
    name = path.strip("/").replace("/", "_")
    return f"{name or 'root'}.tar"


async def archive(request: Request) -> Response:
    image, path = _image(request), _path(request)
    _, helper = await engine_of(request).open_in_image(image, "archive", path)
    headers = {"Content-Disposition": f'attachment; filename="{archive_name(path)}"', "Vary": "Accept-Encoding"}
    if request.method == "HEAD":
        helper.close()
        return Response(status_code=200, headers=headers, media_type="application/x-tar")
    compress = accepts_gzip(request)
    if compress:
        headers["Content-Encoding"] = "gzip"
    return HelperResponse(helper, compress, headers=headers, media_type="application/x-tar")


async def list_directory(request: Request) -> Response:
    """The DirectoryList JSON, or with `text` the ls-like form: both made by the helper, passed on as is
    (parsing and re-serialising 200,000 entries here held the loop for 2.3 s)."""
    image, path = _image(request), _path(request)
    text = flag(request, "text")
    header, helper = await engine_of(request).open_in_image(image, "list-text" if text else "list", path)
    media_type = "text/plain; charset=utf-8" if text else "application/json"
    return HelperResponse(helper, headers=_sized(header), media_type=media_type)


async def grep(request: Request) -> Response:
    image = _image(request)
    params = request.query_params
    patterns = tuple(params.getlist("pattern"))
    if not patterns or not all(patterns):
        raise ApiError("pattern: required (non-empty, may be repeated)")
    query = GrepQuery(
        patterns=patterns, paths=tuple(params.getlist("path")) or ("/",), globs=tuple(params.getlist("glob")),
        case=params.get("case") or "sensitive",
        before=int_param(request, "before", 0, 0, MAX_CONTEXT) or 0,
        after=int_param(request, "after", 0, 0, MAX_CONTEXT) or 0,
        max_count=int_param(request, "max_count", None, 1, MAX_COUNT),
        max_total=int_param(request, "max_total", DEFAULT_MAX_TOTAL, 1, MAX_TOTAL) or DEFAULT_MAX_TOTAL)
    header, helper = await engine_of(request).open_in_image(image, "grep", "/", query)
    return HelperResponse(helper, headers=_sized(header), media_type="application/json")


routes = [
    Route("/v1/inspect", inspect_redirect, methods=["GET"]),
    Route("/v1/inspect/", find_by_tag, methods=["GET"]),
    Route("/v1/inspect/{image_uuid}", image_redirect, methods=["GET"]),
    Route("/v1/inspect/{image_uuid}/", inspect_image, methods=["GET"]),
    Route("/v1/inspect/{image_uuid}/download", download, methods=["GET"]),
    Route("/v1/inspect/{image_uuid}/archive", archive, methods=["GET"]),
    Route("/v1/inspect/{image_uuid}/list", list_directory, methods=["GET"]),
    Route("/v1/inspect/{image_uuid}/grep", grep, methods=["GET"]),
]
