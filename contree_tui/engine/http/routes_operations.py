"""Instances and operations: spawn, list, status (with `inflight` output), cancel, and the SSE event log."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contree_tui.engine.http.context import api_path, engine_of, settings_of
from contree_tui.engine.http.errors import ApiError
from contree_tui.engine.http.params import flag, int_param, json_object, parse_int, path_uuid, time_param
from contree_tui.engine.http.serialize import (
    fold_process,
    is_active,
    operation_response,
    operation_summary,
    request_echo,
)
from contree_tui.engine.http.sse import EventStreamResponse, event_stream
from contree_tui.engine.models import Conflict, OperationStatus

KINDS = ("instance", "image_import")
RETRY_AFTER = {"Retry-After": "1"}


async def spawn_instance(request: Request) -> Response:
    body = await json_object(request)
    op = await engine_of(request).spawn(body)
    return JSONResponse({"uuid": op.uuid, **request_echo(op), "result": None}, status_code=201,
                        headers={"Location": api_path(request, f"/operations/{op.uuid}")})


async def list_operations(request: Request) -> Response:
    status = request.query_params.get("status") or None
    if status is not None and status.upper() not in OperationStatus.__members__:
        raise ApiError(f"status: one of {', '.join(OperationStatus.__members__)}")
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise ApiError(f"kind: one of {', '.join(KINDS)}")
    ops = engine_of(request).store.list_operations(
        limit=int_param(request, "limit", 100, 1, 1000) or 100, offset=int_param(request, "offset", 0, 0) or 0,
        status=OperationStatus(status.upper()) if status else None, kind=kind,
        since=time_param(request, "since"), until=time_param(request, "until"))
    now = time.time()
    return JSONResponse([operation_summary(op, now) for op in ops])


async def get_operation(request: Request) -> Response:
    engine = engine_of(request)
    op = engine.store.get_operation(path_uuid(request, "op_id", "operation"))
    inflight = flag(request, "inflight")
    result = None
    if op.status.is_terminal:
        result = op.result
    elif inflight and op.status == OperationStatus.EXECUTING:
        result = fold_process(engine.store.events(op.uuid), 1)
    headers = RETRY_AFTER if is_active(op) else None
    return JSONResponse(operation_response(op, result), headers=headers)


async def cancel_operation(request: Request) -> Response:
    engine = engine_of(request)
    op = engine.store.get_operation(path_uuid(request, "op_id", "operation"))
    if op.status.is_terminal:
        raise Conflict(f"operation {op.uuid} already ended ({op.status.value})")
    # The kill is immediate; waiting a moment lets a GET right after see CANCELLED.
    cancel = asyncio.ensure_future(engine.cancel(op.uuid))
    cancel.add_done_callback(_consume)
    try:
        await asyncio.wait_for(asyncio.shield(cancel), settings_of(request).cancel_wait)
    except (TimeoutError, Conflict):
        pass
    return Response(status_code=202)


def _consume(future: asyncio.Future[object]) -> None:
    """A cancel that outlived its request ends unobserved; its outcome (even a Conflict) is not an error."""
    if not future.cancelled():
        future.exception()


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        return None
    return parse_int(raw, "Last-Event-Id")


async def operation_events(request: Request) -> EventStreamResponse:
    engine = engine_of(request)
    op = engine.store.get_operation(path_uuid(request, "op_id", "operation"))
    follow = flag(request, "follow")
    spid = int_param(request, "spid", None, 0)
    since = int_param(request, "since", 0, 0) or 0
    resume = _last_event_id(request)
    after = resume if resume is not None else since
    # 425 only for an operation nothing is starting: a run spawned a moment ago has its first event on the
    # engine's next loop tick, and a 425 then cost a client its whole retry delay (10 runs in 400 here).
    if (op.status in (OperationStatus.PENDING, OperationStatus.ASSIGNED) and not engine.is_starting(op.uuid)
            and not engine.store.last_event_id(op.uuid)):
        raise ApiError(f"events of operation {op.uuid} are not available yet; retry shortly", status=425,
                       headers=RETRY_AFTER)
    return EventStreamResponse(event_stream(engine, op.uuid, after=after, spid=spid, follow=follow,
                                            keepalive=settings_of(request).keepalive))


routes = [
    Route("/v1/instances", spawn_instance, methods=["POST"]),
    Route("/v1/operations", list_operations, methods=["GET"]),
    Route("/v1/operations/{op_id}", get_operation, methods=["GET"]),
    Route("/v1/operations/{op_id}", cancel_operation, methods=["DELETE"]),
    Route("/v1/operations/{op_id}/events", operation_events, methods=["GET"]),
]
