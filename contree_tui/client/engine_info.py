"""What the embedded engine says about itself (our API extension GET /v1/x/engine): its mode (root or
rootless, with which ids) and which limits are in force by what mechanism, for `contree-tui engine status`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


async def engine_info(socket: Path, timeout: float = 2.0) -> dict[str, Any] | None:
    """The engine's description, or None from an engine too old to give one (404) or not answering."""
    transport = httpx.AsyncHTTPTransport(uds=str(socket))
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            response = await client.get("http://engine/v1/x/engine", headers={"Authorization": "Bearer local"})
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    body = response.json()
    return body if isinstance(body, dict) else None


def describe_engine(info: dict[str, Any]) -> list[str]:
    """`engine status`'s lines after the first: the mode, then one line per limit."""
    lines = [f"mode: {info.get('mode_text') or info.get('mode', '?')}"]
    cgroups = info.get("cgroups")
    note = info.get("cgroup_note") or ""
    lines.append(f"cgroups: {cgroups}" if cgroups else f"cgroups: none ({note})" if note else "cgroups: none")
    lines.append("limits:")
    lines += [f"  {line}" for line in info.get("limits", [])]
    return lines
