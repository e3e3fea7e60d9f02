"""`create_app(engine)`: every route of the Contree v1 API over an already-open Engine.

Starlette, because the app is a thin async translation: a router, request/response objects and streaming
responses (SSE, tar), nothing more, and it runs on the engine's own asyncio loop under uvicorn.
"""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contree_tui.engine.engine import Engine
from contree_tui.engine.http import (
    routes_disk,
    routes_engine,
    routes_files,
    routes_images,
    routes_inspect,
    routes_operations,
    routes_subprocesses,
)
from contree_tui.engine.http.body_limits import BodyLimit
from contree_tui.engine.http.context import Settings, engine_of
from contree_tui.engine.http.errors import CatchAll, engine_error, http_error
from contree_tui.engine.models import MAX_TRUNCATE_OUTPUT_AT, EngineError

PERMISSIONS = ("import", "spawn", "spawn_disposable", "list", "cancel", "set_image_tag")


async def whoami(request: Request) -> Response:
    engine = engine_of(request)
    config = engine.config
    limits = config.limits
    return JSONResponse({
        "token_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"contree-tui-engine:{engine.state.id}")),
        "token_expiration": None,
        "permissions": dict.fromkeys(PERMISSIONS, True),
        "limits": {
            "instance_max_timeout": int(config.max_timeout), "instance_default_timeout": int(config.default_timeout),
            "instance_max_memory_bytes": limits.memory_bytes, "instance_max_cpus": max(1, int(limits.cpus)),
            "instance_max_pids": limits.pids, "instance_max_open_files": limits.open_files,
            "instance_max_truncate_output_at": MAX_TRUNCATE_OUTPUT_AT,
        },
        "operations_stat": {},
    })


def create_app(engine: Engine, *, keepalive: float = 15.0, cancel_wait: float = 5.0,
               stdin_timeout: float = 30.0) -> Starlette:
    """The API app over `engine`, which the caller opened and will close (the app never does)."""
    routes = [
        *routes_images.routes, *routes_files.routes, *routes_operations.routes, *routes_subprocesses.routes,
        *routes_inspect.routes, *routes_disk.routes, *routes_engine.routes,
        Route("/v1/whoami", whoami, methods=["GET"]),
    ]
    middleware = [Middleware(CatchAll), Middleware(BodyLimit, upload_limit=lambda: engine.config.max_upload_bytes)]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={EngineError: engine_error, HTTPException: http_error})
    app.state.engine = engine
    app.state.settings = Settings(keepalive=keepalive, cancel_wait=cancel_wait, stdin_timeout=stdin_timeout)
    return app
