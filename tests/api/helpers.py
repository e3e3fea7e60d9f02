"""Small helpers the API tests share."""

from __future__ import annotations

import base64
from typing import Any

from contree_client.httpx import ContreeAsyncClient
from contree_client.models import OperationResponse


async def run(client: ContreeAsyncClient, image: str, command: str, **fields: Any) -> OperationResponse:
    """Spawn a shell command through the API and wait for it (events followed to completion, then GET)."""
    spawned = await client.spawn_instance(command, image, shell=True, **fields)
    return await client.wait_operation(spawned.uuid, timeout=60)


def text(stream: Any) -> str:
    """A StreamRepr's bytes as text, whichever encoding it came in."""
    if stream.encoding == "base64":
        return base64.b64decode(stream.value).decode()
    return str(stream.value)
