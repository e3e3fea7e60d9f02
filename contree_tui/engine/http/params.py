"""Reading requests strictly: every malformed parameter or body is a 400 naming what was wrong."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from contree_tui.engine.http.errors import ApiError
from contree_tui.engine.spawn_request import UUID_RE

INTERVAL_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
TRUE_FLAGS = ("", "1", "true", "yes", "on")
FALSE_FLAGS = ("0", "false", "no", "off")
MAX_INT = 1 << 62


def flag(request: Request, name: str) -> bool:
    """HTTP-flag booleans: `?name` and `?name=1` enable, `?name=0` and absence disable."""
    value = request.query_params.get(name)
    if value is None:
        return False
    value = value.strip().lower()
    if value in TRUE_FLAGS:
        return True
    if value in FALSE_FLAGS:
        return False
    raise ApiError(f"{name}: expected a flag (1 or 0), got {value!r}")


def parse_int(raw: str, name: str, lo: int = 0, hi: int = MAX_INT) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ApiError(f"{name}: expected an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ApiError(f"{name}: must be between {lo} and {hi}")
    return value


def int_param(request: Request, name: str, default: int | None, lo: int = 0, hi: int = MAX_INT) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(raw, name, lo, hi)


def time_value(raw: str, name: str) -> float:
    """A Unix timestamp, an ISO 8601 date-time, or an interval ago (`600s`, `15m`, `2h`, `3d`, `1w`)."""
    text = raw.strip()
    interval = INTERVAL_RE.match(text)
    if interval:
        return time.time() - float(interval.group(1)) * INTERVAL_SECONDS[interval.group(2)]
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        if not math.isfinite(value):
            raise ApiError(f"{name}: {raw!r} is not a time")
        return value
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ApiError(f"{name}: expected a Unix timestamp, an ISO date-time or an interval like 15m, "
                       f"got {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def time_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    return time_value(raw, name)


def uuid_value(raw: str, what: str) -> str:
    if not UUID_RE.match(raw):
        raise ApiError(f"{what}: {raw!r} is not a UUID")
    return raw.lower()


def path_uuid(request: Request, name: str, what: str) -> str:
    return uuid_value(request.path_params[name], what)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: Request) -> Any:
    """The body as JSON (NaN and Infinity refused: they are not JSON and break numeric fields)."""
    body = await request.body()
    if not body.strip():
        raise ApiError("request body: expected JSON, got an empty body")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(f"request body: malformed JSON ({exc})") from None


async def json_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(f"request body: expected a JSON object, got {type(body).__name__}")
    return body
