"""Uploaded files: POST the raw bytes, look them up by sha256 (HEAD/GET), list them.

Our extension POST /v1/x/files/batch (under /v1/x/ like the disk routes, so that no official route is given a
meaning the API may later define otherwise) takes many small files in one body: each an 8-byte big-endian
length and its bytes (engine/file_store.py add_files_framed) → 201 {"files": [FileResponse...]} in the body's
order; a broken frame or a cap → 400. The client's directory sync uses it on this engine (client/blob_upload.py).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contree_tui.engine.http.context import engine_of
from contree_tui.engine.http.params import int_param, time_param
from contree_tui.engine.http.serialize import file_json
from contree_tui.engine.models import NotFound

SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


async def upload_file(request: Request) -> Response:
    # Streamed to disk as it arrives (hashed on the way): a whole body in memory cost 676 MB of RSS for a
    # 300 MB upload. The size cap is BodyLimit's (engine.config.max_upload_bytes).
    stored = await engine_of(request).add_file_stream(request.stream())
    return JSONResponse({"uuid": stored.uuid, "sha256": stored.sha256, "size": stored.size}, status_code=201)


async def upload_files(request: Request) -> Response:
    stored = await engine_of(request).add_files_framed(request.stream())
    return JSONResponse({"files": [{"uuid": f.uuid, "sha256": f.sha256, "size": f.size} for f in stored]},
                        status_code=201)


async def list_files(request: Request) -> Response:
    files = engine_of(request).store.list_files(
        limit=int_param(request, "limit", 100, 1, 1000) or 100, offset=int_param(request, "offset", 0, 0) or 0,
        since=time_param(request, "since"), until=time_param(request, "until"))
    return JSONResponse({"files": [file_json(f) for f in files]})


async def get_file(request: Request) -> Response:
    sha256 = request.path_params["sha256"]
    if not SHA256_RE.match(sha256):
        # 404, not 400: the spec lists 401/403/404 here, and what is not a digest names no file (contree-cli
        # uploads on a 404 and gives up on anything else)
        if request.method == "HEAD":
            return Response(status_code=404)
        raise NotFound(f"sha256: {sha256!r} is not a sha256 digest (64 hex characters): no file has it")
    if request.method == "HEAD":
        try:
            engine_of(request).store.file_by_sha256(sha256)
        except NotFound:
            return Response(status_code=404)
        return Response(status_code=200)
    return JSONResponse(file_json(engine_of(request).store.file_by_sha256(sha256)))


routes = [
    Route("/v1/files", upload_file, methods=["POST"]),
    Route("/v1/x/files/batch", upload_files, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{sha256}", get_file, methods=["GET"]),
]
