"""Reading images without running them: tag lookup, metadata, download, archive, list, grep.

Every read goes through the engine's confined helper (chrooted into a read-only mount of the image), so
`..` and symlinks — absolute or relative — resolve inside the image and never reach a host file.
"""

from __future__ import annotations

import asyncio
import stat
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from contree_tui.engine.grep import DEFAULT_MAX_TOTAL, MAX_CONTEXT, MAX_COUNT, MAX_TOTAL, GrepQuery
from contree_tui.engine.http.context import api_path, engine_of
from contree_tui.engine.http.errors import ApiError
from contree_tui.engine.http.params import flag, int_param, path_uuid
from contree_tui.engine.http.serialize import image_json
from contree_tui.engine.inspect import HelperStream
from contree_tui.engine.models import Image

CHUNK = 1 << 20


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
    return JSONResponse(image_json(_image(request)))


async def _chunks(stream: HelperStream, compress: bool = False) -> AsyncIterator[bytes]:
    gzip = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
    try:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            if gzip is None:
                yield chunk
            elif out := gzip.compress(chunk):
                yield out
        if gzip is not None:
            yield gzip.flush()
    finally:
        stream.close()


async def download(request: Request) -> Response:
    image, path = _image(request), _path(request)
    header, stream = engine_of(request).open_in_image(image, "read", path)
    headers = {"Content-Length": str(header.get("size", 0))}
    media_type = "text/plain; charset=utf-8" if flag(request, "text") else "application/octet-stream"
    if request.method == "HEAD":
        stream.close()
        return Response(status_code=200, headers=headers, media_type=media_type)
    return StreamingResponse(_chunks(stream), headers=headers, media_type=media_type)


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
    _, stream = engine_of(request).open_in_image(image, "archive", path)
    headers = {"Content-Disposition": f'attachment; filename="{archive_name(path)}"', "Vary": "Accept-Encoding"}
    if request.method == "HEAD":
        stream.close()
        return Response(status_code=200, headers=headers, media_type="application/x-tar")
    compress = accepts_gzip(request)
    if compress:
        headers["Content-Encoding"] = "gzip"
    return StreamingResponse(_chunks(stream, compress), headers=headers, media_type="application/x-tar")


def human_size(size: float) -> str:
    if size == 0:
        return "0"
    for unit in ("", " KB", " MB", " GB", " TB"):
        if size < 1024 or unit == " TB":
            return f"{size:.2f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


def listing_text(listing: dict[str, Any]) -> str:
    """The ls-like form (`total 19.42 KB` / `drwxr-xr-x 1 0 0   858.00 May 30 12:13 bin`)."""
    files = listing["files"]
    lines = [f"total {human_size(sum(f['size'] for f in files))}"]
    for item in files:
        when = datetime.fromtimestamp(item["mtime"], UTC).strftime("%b %d %H:%M")
        name = item["path"] + (f" -> {item['symlink_to']}" if item["is_symlink"] else "")
        lines.append(f"{stat.filemode(item['mode'])} {item['nlink']} {item['uid']} {item['gid']} "
                     f"{human_size(item['size']):>8} {when} {name}")
    return "\n".join(lines) + "\n"


async def list_directory(request: Request) -> Response:
    image, path = _image(request), _path(request)
    listing = await engine_of(request).list_directory(image, path)
    if flag(request, "text"):
        return PlainTextResponse(listing_text(listing))
    return JSONResponse(listing)


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
    return JSONResponse(await engine_of(request).grep(image, query))


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
