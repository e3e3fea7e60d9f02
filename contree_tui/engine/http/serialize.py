"""Engine records in the API's JSON shapes (Image, File, OperationSummary/Response, InstanceResult).

Metadata is complete enough for contree-sdk's strict (cattrs) parser: numeric `duration`, every field of
the instance metadata with its default, a full `result` (16 resource and 7 state fields) or null, and a
top-level `result` with both `image` and `tag`.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from contree_tui.engine.models import (
    ACTIVE_STATUSES,
    EngineError,
    Event,
    Image,
    Operation,
    OperationStatus,
    SpawnRequest,
    StoredFile,
)
from contree_tui.engine.output import decode_stream, encode_stream
from contree_tui.engine.spawn_request import parse_spawn_request


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat()


def image_json(image: Image) -> dict[str, Any]:
    return {"uuid": image.uuid, "tag": image.tag, "created_at": iso(image.created_at),
            "operation_uuid": image.operation_uuid}


def file_json(stored: StoredFile) -> dict[str, Any]:
    return {"uuid": stored.uuid, "sha256": stored.sha256, "size": stored.size,
            "created_at": iso(stored.created_at), "updated_at": iso(stored.updated_at)}


def duration(op: Operation, now: float | None = None) -> float:
    if op.started_at is None:
        return 0.0
    end = op.finished_at if op.finished_at is not None else (now or time.time())
    return max(0.0, end - op.started_at)


def operation_summary(op: Operation, now: float | None = None) -> dict[str, Any]:
    return {
        "uuid": op.uuid, "kind": op.kind, "status": op.status.value, "error": op.error,
        "created_at": iso(op.created_at), "duration": duration(op, now), "image_size": op.image_size,
        "consumed_cpu": op.consumed_cpu, "consumed_memory": op.consumed_memory, "image_uuid": op.image_uuid,
        "result_image_uuid": op.result_image_uuid,
    }


def _stdin_echo(raw: Any) -> dict[str, Any]:
    raw = raw if isinstance(raw, dict) else {}
    value = raw.get("value")
    return {"value": value if isinstance(value, str) else "",
            "encoding": raw.get("encoding") if raw.get("encoding") in ("ascii", "base64") else "ascii",
            "close": raw.get("close") is not False}


def parsed_request(op: Operation) -> SpawnRequest | None:
    """The operation's request as the engine understood it (it was validated at spawn)."""
    try:
        return parse_spawn_request(op.request, op.image_uuid or "", max_layer_bytes=1 << 62)  # checked at spawn
    except EngineError:
        return None


def request_echo(op: Operation) -> dict[str, Any]:
    """The spawn request as parsed, with every default filled in (`InstanceSpawnResponse` minus uuid/result)."""
    raw = op.request
    req = parsed_request(op)
    if req is None:  # cannot happen for a request the engine accepted; echo what there is
        return {**raw, "image": op.image_uuid}
    env = raw.get("env") if isinstance(raw.get("env"), dict) else {}
    timeout = raw.get("timeout")
    return {
        "command": req.command, "image": op.image_uuid, "args": list(req.args), "shell": req.shell,
        "env": {k: v for k, v in env.items() if isinstance(v, str)},
        "preserve_env": req.preserve_env, "preserve_cwd": req.preserve_cwd, "cwd": req.cwd,
        "uid": req.uid, "gid": req.gid, "hostname": req.hostname, "disposable": req.disposable,
        "timeout": math.ceil(timeout) if isinstance(timeout, (int, float)) else 0,
        "truncate_output_at": req.truncate_output_at, "stdin": _stdin_echo(raw.get("stdin")),
        "files": {f.path: {"uuid": f.file_uuid, "mode": f"{f.mode:04o}", "uid": f.uid, "gid": f.gid}
                  for f in req.files},
        "resources_limits": {"max_layer_bytes": req.max_layer_bytes},
        "networking": {"enabled": req.networking},
    }


def import_metadata(op: Operation) -> dict[str, Any]:
    """`ImageImportMetadata`: registry {url, credentials {username, password "<MASKED>"}}, tag, timeout (the
    password was never stored; `insecure`, our extension, is not echoed: the spec's model has no such field)."""
    raw = op.request.get("registry") if isinstance(op.request.get("registry"), dict) else {}
    registry: dict[str, Any] = {"url": raw.get("url")}
    if isinstance(raw.get("credentials"), dict):
        registry["credentials"] = {"username": raw["credentials"].get("username"), "password": "<MASKED>"}
    return {"registry": registry, "tag": op.request.get("tag"), "timeout": op.request.get("timeout")}


def operation_response(op: Operation, result: dict[str, Any] | None, now: float | None = None) -> dict[str, Any]:
    """`OperationResponse`: the summary plus metadata matching `kind` and the result image/tag."""
    metadata = import_metadata(op) if op.kind == "image_import" else {**request_echo(op), "result": result}
    return {
        **operation_summary(op, now),
        "metadata": metadata,
        "result": {"image": op.result_image_uuid, "tag": op.result_tag},
    }


def is_active(op: Operation) -> bool:
    return op.status in ACTIVE_STATUSES


def _resources(usage: dict[str, Any], elapsed: float) -> dict[str, Any]:
    return {
        "block_input": usage.get("block_input_ops", 0), "block_output": usage.get("block_output_ops", 0),
        "cost": 0.0, "elapsed_time": elapsed, "involuntary_switches": usage.get("involuntary_ctx_switches", 0),
        "max_rss": usage.get("max_rss_kb", 0), "monotonic_time": time.monotonic(),
        "page_faults": usage.get("minor_faults", 0), "page_faults_io": usage.get("major_faults", 0),
        "shared_memory": usage.get("shared_memory", 0), "signals": usage.get("signals_received", 0),
        "swaps": usage.get("swaps", 0), "system_cpu_time": usage.get("sys_time_us", 0) / 1e6,
        "unshared_memory": usage.get("unshared_memory", 0), "user_cpu_time": usage.get("user_time_us", 0) / 1e6,
        "voluntary_switches": usage.get("voluntary_ctx_switches", 0),
    }


def fold_process(events: list[Event], spid: int) -> dict[str, Any] | None:
    """A process's `InstanceResult` folded from its spawn/stdout/stderr/exit events; None without a spawn.

    While it runs, `exit_code` and `signal` are -1 and the resources are zeros. `truncated` events are
    matched by the process's spid or the daemon's (0), where the engine records the main process's.
    """
    spawn = next((e for e in events if e.type == "spawn" and e.spid == spid), None)
    if spawn is None:
        return None
    streams = {"stdout": bytearray(), "stderr": bytearray()}
    truncated = set()
    exit_event = None
    for event in events:
        if event.type in streams and event.spid == spid:
            streams[event.type] += decode_stream(event.data)
        elif event.type == "truncated" and event.spid in (spid, 0):
            truncated.add(event.data.get("stream"))
        elif event.type == "exit" and event.spid == spid:
            exit_event = event
    data = exit_event.data if exit_event else {}
    if exit_event is not None:
        elapsed = data.get("duration_ms", 0) / 1000
    else:
        elapsed = max(0.0, time.time() - _parse_ts(spawn.ts))
    return {
        "state": {"exit_code": data.get("code", -1), "pid": data.get("pid", spawn.data.get("pid", 0)),
                  "signal": data.get("signal", -1), "timed_out": bool(data.get("timed_out", False)),
                  "core_dump": bool(data.get("core_dump", False)), "stopped": False, "continued": False},
        "stdout": encode_stream(bytes(streams["stdout"]), truncated="stdout" in truncated),
        "stderr": encode_stream(bytes(streams["stderr"]), truncated="stderr" in truncated),
        "resources": _resources(data.get("resources") or {}, elapsed),
    }


def _parse_ts(ts: str) -> float:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def terminal(op: Operation) -> bool:
    return OperationStatus(op.status).is_terminal
