"""Our API extension describing the engine itself, for `contree-tui engine status` (#14). Under /v1/x/, like
the disk routes: no route of the official API is given a meaning it may later define otherwise.

- GET /v1/x/engine → 200 {"mode": "root"|"rootless", "mode_text": "rootless as uid 1001 with ids ...",
  "cgroups": "v1"|"v2"|null, "cgroup_note": why there are none (or ""), "limits": ["memory 4 GiB (...)", ...]}
  (engine/sandbox/limit_plan.py: which mechanism enforces each run limit).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contree_tui.engine.http.context import engine_of


async def engine_info(request: Request) -> Response:
    engine = engine_of(request)
    return JSONResponse(engine.limit_plan.to_json(engine.config.limits, engine.admission.memory_budget))


routes = [Route("/v1/x/engine", engine_info, methods=["GET"])]
