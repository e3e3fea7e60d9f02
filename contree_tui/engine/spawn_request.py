"""Validation of an `InstanceSpawnRequest` body into a SpawnRequest, with the spec's defaults.

Unknown fields are tolerated (contree-sdk sends `stdin.truncated`); every refusal is an EngineError (400)
that names the field.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from typing import Any

from contree_tui.engine.models import (
    DEFAULT_HOSTNAME,
    DEFAULT_MAX_LAYER_BYTES,
    DEFAULT_TRUNCATE_OUTPUT_AT,
    MAX_TRUNCATE_OUTPUT_AT,
    EngineError,
    FileMount,
    SpawnRequest,
    StdinSpec,
)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(?:[:/.][A-Za-z0-9_-]+)*$")
CWD_RE = re.compile(r"^((/[^/]*)+/?)?$")
MAX_ID = (1 << 32) - 2  # uid_t is 32 bits and -1 means "unchanged": a larger id must not wrap around to root


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if kind is int and isinstance(value, bool):
        raise EngineError(f"{name}: expected an integer")
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise EngineError(f"{name}: expected {expected}, got {type(value).__name__}")
    return value


def parse_mode(raw: Any) -> int:
    """'0644', '0755', '644' and MCP's oct(st_mode) form '0o100644' all mean permission bits."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw & 0o7777
    if not isinstance(raw, str) or not raw:
        raise EngineError(f"files: invalid mode {raw!r}")
    text = raw[2:] if raw.lower().startswith("0o") else raw
    try:
        return int(text, 8) & 0o7777
    except ValueError:
        raise EngineError(f"files: invalid mode {raw!r}: expected octal digits") from None


def parse_absolute_path(path: Any, what: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise EngineError(f"{what}: {path!r} is not an absolute path")
    if ".." in path.split("/") or "\0" in path:
        raise EngineError(f"{what}: {path!r} may not contain '..' or NUL")
    normal = posixpath.normpath(path)
    if normal == "/":
        raise EngineError(f"{what}: {path!r} names the root directory")
    return normal


def parse_stdin(raw: Any) -> StdinSpec:
    if raw is None:
        return StdinSpec()
    if not isinstance(raw, dict):
        raise EngineError("stdin: expected an object {value, encoding, close}")
    value = raw.get("value") or ""
    encoding = raw.get("encoding") or "ascii"
    if not isinstance(value, str):
        raise EngineError("stdin.value: expected a string")
    if encoding == "base64":
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise EngineError("stdin.value: not valid base64") from None
    elif encoding == "ascii":
        data = value.encode("utf-8")
    else:
        raise EngineError(f"stdin.encoding: {encoding!r} is not ascii or base64")
    close = raw.get("close", True)
    return StdinSpec(data=data, close=True if close is None else bool(close))


def _no_nul(value: str, what: str) -> None:
    """No process can be given a NUL byte in an argument, a variable or a path: refuse it here, by name."""
    if "\0" in value:
        raise EngineError(f"{what}: may not contain a NUL byte")


def parse_spawn_request(body: Any, image_uuid: str, max_layer_bytes: int = DEFAULT_MAX_LAYER_BYTES) -> SpawnRequest:
    """The request validated; `max_layer_bytes` is the engine's ceiling for resources_limits.max_layer_bytes."""
    if not isinstance(body, dict):
        raise EngineError("request body must be a JSON object")
    command = body.get("command")
    if not isinstance(command, str) or not command:
        raise EngineError("command: required, a non-empty string")
    _no_nul(command, "command")
    args = _field(body, "args", list, [])
    if not all(isinstance(a, str) for a in args):
        raise EngineError("args: expected a list of strings")
    for arg in args:
        _no_nul(arg, "args")
    env = _field(body, "env", dict, {})
    clean_env: dict[str, str] = {}
    for key, value in env.items():
        if value is None or value == "":
            continue  # "" / null remove a variable (preserve_env semantics)
        if not isinstance(value, str):
            raise EngineError(f"env.{key}: expected a string")
        if not key or "=" in key:
            raise EngineError(f"env: {key!r} is not a variable name")
        _no_nul(key, "env")
        _no_nul(value, f"env.{key}")
        clean_env[key] = value
    cwd = _field(body, "cwd", str, "")
    _no_nul(cwd, "cwd")
    if not CWD_RE.match(cwd):
        raise EngineError(f"cwd: {cwd!r} is not an absolute path")
    timeout = _field(body, "timeout", (int, float), None)
    if timeout is not None and timeout <= 0:
        raise EngineError("timeout: must be positive")
    truncate = _field(body, "truncate_output_at", int, DEFAULT_TRUNCATE_OUTPUT_AT)
    if not 0 <= truncate <= MAX_TRUNCATE_OUTPUT_AT:
        raise EngineError(f"truncate_output_at: must be between 0 and {MAX_TRUNCATE_OUTPUT_AT}")
    limits = _field(body, "resources_limits", dict, {})
    max_layer = limits.get("max_layer_bytes") or min(DEFAULT_MAX_LAYER_BYTES, max_layer_bytes)
    if not isinstance(max_layer, int) or isinstance(max_layer, bool) or max_layer < 1:
        raise EngineError("resources_limits.max_layer_bytes: expected a positive integer")
    if max_layer > max_layer_bytes:
        raise EngineError(f"resources_limits.max_layer_bytes: at most {max_layer_bytes} on this engine")
    networking = _field(body, "networking", dict, {})
    files = []
    for path, spec in _field(body, "files", dict, {}).items():
        target = parse_absolute_path(path, "files")
        if not isinstance(spec, dict) or not isinstance(spec.get("uuid"), str) or not UUID_RE.match(spec["uuid"]):
            raise EngineError(f"files[{path}]: expected {{uuid, mode, uid, gid}} with a file uuid")
        uid = spec.get("uid") or 0
        gid = spec.get("gid") or 0
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_ID for v in (uid, gid)):
            raise EngineError(f"files[{path}]: uid and gid must be integers between 0 and {MAX_ID}")
        files.append(FileMount(target, spec["uuid"].lower(), parse_mode(spec.get("mode") or "0644"), uid, gid))
    uid = _field(body, "uid", int, 0)
    gid = _field(body, "gid", int, 0)
    if not (0 <= uid <= MAX_ID and 0 <= gid <= MAX_ID):
        raise EngineError(f"uid/gid: must be between 0 and {MAX_ID}")
    hostname = _field(body, "hostname", str, DEFAULT_HOSTNAME) or DEFAULT_HOSTNAME
    if len(hostname.encode()) > 64 or "\0" in hostname:
        raise EngineError("hostname: at most 64 bytes, no NUL")
    return SpawnRequest(
        image=image_uuid, command=command, args=tuple(args), shell=bool(_field(body, "shell", bool, False)),
        env=clean_env, cwd=cwd.rstrip("/") if cwd not in ("", "/") else cwd, uid=uid, gid=gid,
        hostname=hostname,
        disposable=bool(_field(body, "disposable", bool, False)), timeout=timeout, truncate_output_at=truncate,
        stdin=parse_stdin(body.get("stdin")), files=tuple(files), max_layer_bytes=max_layer,
        networking=bool(networking.get("enabled", True)),
        preserve_env=bool(_field(body, "preserve_env", bool, False)),
        preserve_cwd=bool(_field(body, "preserve_cwd", bool, False)), raw=body,
    )


# The InstanceSpawnRequest schema's fields, and of the objects inside it. Anything else is dropped before the
# request is stored: a 50 MB unknown field was kept verbatim and every GET /operations paid for it (70x).
SPAWN_FIELDS = frozenset({
    "image", "command", "args", "shell", "env", "cwd", "uid", "gid", "hostname", "disposable", "timeout",
    "truncate_output_at", "stdin", "files", "resources_limits", "networking", "preserve_env", "preserve_cwd"})
NESTED_FIELDS = {"stdin": frozenset({"value", "encoding", "close"}),
                 "resources_limits": frozenset({"max_layer_bytes"}), "networking": frozenset({"enabled"})}
FILE_FIELDS = frozenset({"uuid", "mode", "uid", "gid"})


def stored_request(body: dict[str, Any]) -> dict[str, Any]:
    """The spawn request as the operation keeps it: the schema's fields only (the body was validated)."""
    kept: dict[str, Any] = {}
    for name, value in body.items():
        if name not in SPAWN_FIELDS:
            continue
        inner = NESTED_FIELDS.get(name)
        if inner is not None and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in inner}
        elif name == "files" and isinstance(value, dict):
            value = {path: {k: v for k, v in spec.items() if k in FILE_FIELDS} if isinstance(spec, dict) else spec
                     for path, spec in value.items()}
        kept[name] = value
    return kept
