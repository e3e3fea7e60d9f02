"""Processes of a running instance: the main one is spid 1 (its result, a signal to its group, its stdin).

Another process in a running instance (`POST …/subprocesses`, spid ≥ 2) enters the sandbox's namespaces
(engine/sandbox/nsenter.py); its stdin is what the request carries, then, with `stdin.close: false`, what
`POST …/subprocesses/{spid}/stdin` writes, as for the main process. Until its spawn is reported, a signal or
a write to it is answered 425 (retry), as its GET is: it exists, it has not started yet.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import signal
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contree_tui.engine.engine import Engine
from contree_tui.engine.http.context import engine_of, settings_of
from contree_tui.engine.http.errors import ApiError
from contree_tui.engine.http.params import json_object, parse_int, path_uuid
from contree_tui.engine.http.serialize import fold_process
from contree_tui.engine.instance import InstanceRun
from contree_tui.engine.models import ACTIVE_STATUSES, Conflict, NotFound, Operation
from contree_tui.engine.stdin_pipe import StdinPipe

MAIN_SPID = 1
TOO_EARLY = {"Retry-After": "1"}
VM_LEVEL_FIELDS = ("image", "hostname", "resources_limits", "files", "timeout", "disposable", "preserve_env")


def _operation(request: Request) -> tuple[Engine, Operation]:
    engine = engine_of(request)
    return engine, engine.store.get_operation(path_uuid(request, "op_id", "operation"))


def _spid(request: Request) -> int:
    return parse_int(request.path_params["spid"], "spid", 1)


def parse_signal(raw: str | None) -> int:
    """`15`, `TERM` or `SIGTERM` (any case); SIGKILL when absent."""
    if raw is None or not raw.strip():
        return signal.SIGKILL
    text = raw.strip().upper()
    if text.isdigit():
        number = int(text)
        if number not in {s.value for s in signal.valid_signals() if isinstance(s, signal.Signals)}:
            raise ApiError(f"signal: {raw!r} is not a known signal number")
        return number
    name = text if text.startswith("SIG") else f"SIG{text}"
    member = signal.Signals.__members__.get(name)
    if member is None or name in ("SIG_DFL", "SIG_IGN"):
        raise ApiError(f"signal: {raw!r} is not a signal name like TERM or SIGINT")
    return member.value


def _starting(op: Operation, spid: int) -> ApiError:
    return ApiError(f"process {spid} of operation {op.uuid} is starting; retry shortly", status=425,
                    headers=TOO_EARLY)


def _no_process(op: Operation, spid: int) -> NotFound:
    if spid != MAIN_SPID:
        return NotFound(f"operation {op.uuid} has no running process {spid}")
    return NotFound(f"process {spid} of operation {op.uuid} is not running (it already exited)")


async def create_subprocess(request: Request) -> Response:
    engine, op = _operation(request)
    body = await json_object(request)
    if not isinstance(body.get("command"), str) or not body["command"]:
        raise ApiError("command: required, a non-empty string")
    refused = [name for name in VM_LEVEL_FIELDS if name in body]
    if refused:
        raise ApiError(f"{', '.join(refused)}: set when the instance was created, not accepted here")
    if op.status not in ACTIVE_STATUSES:
        raise Conflict(f"operation {op.uuid} is not running ({op.status.value})")
    spid = await engine.exec_process(op.uuid, body)
    location = f"/v1/operations/{op.uuid}/subprocesses/{spid}"
    return JSONResponse({"spid": spid}, status_code=201, headers={"Location": location})


async def get_subprocess(request: Request) -> Response:
    engine, op = _operation(request)
    spid = _spid(request)
    if spid == MAIN_SPID and op.status.is_terminal and op.result is not None:
        return JSONResponse(op.result)
    events = engine.store.events(op.uuid)
    if not events and op.status in ACTIVE_STATUSES:
        raise ApiError(f"operation {op.uuid} has not started yet; retry shortly", status=425, headers=TOO_EARLY)
    result = fold_process(events, spid)
    if result is None:
        run = engine.instance_run(op.uuid)
        if run is not None and spid in run.children:  # created, its spawn not reported yet
            raise _starting(op, spid)
        raise NotFound(f"operation {op.uuid} has no process {spid}")
    return JSONResponse(result)


async def kill_subprocess(request: Request) -> Response:
    engine, op = _operation(request)
    spid = _spid(request)
    signum = parse_signal(request.query_params.get("signal"))
    if op.status not in ACTIVE_STATUSES:
        raise Conflict(f"operation {op.uuid} is not running ({op.status.value})")
    run = engine.instance_run(op.uuid)
    if spid != MAIN_SPID:
        child = run.children.get(spid) if run is not None else None
        if child is not None and child.starting:
            raise _starting(op, spid)
        if child is None or not child.signal(signum):
            raise _no_process(op, spid)
        return Response(status_code=204)
    if run is None or not run.command_pid:
        raise ApiError(f"process {spid} of operation {op.uuid} has not started yet; retry shortly", status=425,
                       headers=TOO_EARLY)
    if not run.signal_command(signum):
        raise _no_process(op, spid)
    return Response(status_code=204)


def _stdin_body(body: dict[str, object]) -> tuple[bytes, bool]:
    value = body.get("value", "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError("value: expected a string")
    encoding = body.get("encoding") or "ascii"
    close = body.get("close", True)
    if close is None:
        close = True
    if not isinstance(close, bool):
        raise ApiError("close: expected true or false")
    if encoding == "ascii":
        return value.encode("utf-8"), close
    if encoding == "base64":
        try:
            return base64.b64decode(value, validate=True), close
        except (binascii.Error, ValueError):
            raise ApiError("value: not valid base64") from None
    raise ApiError(f"encoding: {encoding!r} is not ascii or base64")


def _stdin_target(op: Operation, run: InstanceRun | None, spid: int) -> tuple[StdinPipe, Callable[[], bool]]:
    """The stdin pipe of process `spid`, and a test of whether that process has exited (after a failed write:
    410, nobody reads any more, or 409, it closed its stdin but runs on)."""
    if spid == MAIN_SPID:
        if run is None or run.launched is None:
            raise ApiError(f"operation {op.uuid} has not started yet; retry shortly", status=425,
                           headers=TOO_EARLY)
        return run.stdin, lambda: run.command_host_pid() is None
    child = run.children.get(spid) if run is not None else None
    if child is None:
        raise _no_process(op, spid)
    if child.starting:
        raise _starting(op, spid)
    if child.exited:
        raise ApiError(f"process {spid} has exited: no one reads its stdin", status=410)
    return child.stdin, lambda: child.exited


async def write_stdin(request: Request) -> Response:
    engine, op = _operation(request)
    spid = _spid(request)
    data, close = _stdin_body(await json_object(request))
    if op.status.is_terminal:
        raise ApiError(f"operation {op.uuid} has finished ({op.status.value}): no process to write to",
                       status=410)
    pipe, exited = _stdin_target(op, engine.instance_run(op.uuid), spid)
    if not pipe.keep_open:
        raise Conflict(f"process {spid} was started without stdin.close=false: its stdin is already at EOF")
    async with pipe.lock:
        if pipe.closed:
            raise Conflict(f"the stdin of process {spid} is already closed")
        try:
            await asyncio.wait_for(asyncio.to_thread(pipe.write, data, close=close),
                                   settings_of(request).stdin_timeout)
        except TimeoutError:
            raise ApiError("the write did not complete in time (the process is not reading); "
                           "it may or may not have been delivered", status=504) from None
        except OSError:
            if engine.store.get_operation(op.uuid).status.is_terminal or exited():
                raise ApiError(f"process {spid} has exited: no one reads its stdin", status=410) from None
            raise Conflict(f"the stdin of process {spid} is closed") from None
    return Response(status_code=204)


routes = [
    Route("/v1/operations/{op_id}/subprocesses", create_subprocess, methods=["POST"]),
    Route("/v1/operations/{op_id}/subprocesses/{spid}", get_subprocess, methods=["GET"]),
    Route("/v1/operations/{op_id}/subprocesses/{spid}", kill_subprocess, methods=["DELETE"]),
    Route("/v1/operations/{op_id}/subprocesses/{spid}/stdin", write_stdin, methods=["POST"]),
]
