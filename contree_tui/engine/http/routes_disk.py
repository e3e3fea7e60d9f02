"""Our API extensions for disk: what images cost and deleting one. Under /v1/x/ so that no route of the
official API (which has no image deletion) is given a meaning it may later define otherwise.

- GET /v1/x/df → 200 the engine's disk usage (engine/disk_usage.py: per image own and shared bytes, per
  layer bytes and users, totals, the filesystem's free space).
- DELETE /v1/x/images/{uuid} → 204; 404 unknown; 409 tagged, the source of an active operation, or being
  read (engine/image_disk.py). The layers only it referenced are removed with it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contree_tui.engine.http.context import engine_of
from contree_tui.engine.http.params import path_uuid


async def disk_usage(request: Request) -> Response:
    return JSONResponse(await engine_of(request).disk_usage())


async def delete_image(request: Request) -> Response:
    await engine_of(request).delete_image(path_uuid(request, "image_uuid", "image"))
    return Response(status_code=204)


routes = [
    Route("/v1/x/df", disk_usage, methods=["GET"]),
    Route("/v1/x/images/{image_uuid}", delete_image, methods=["DELETE"]),
]
