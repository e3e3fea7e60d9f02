"""An image's inspect JSON read raw, with our engine's `x_engine` extension when the server adds it (sizes,
layer count, env, workdir, user: see the README's API extensions). contree-client's Image model drops fields it
does not know, so the request goes through its low-level `call`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from contree_client.runtime import RequestSpec

from contree_tui.client.connection import Connection


@dataclass(frozen=True)
class ImageDetails:
    uuid: str
    created_at: str | None = None
    size: int | None = None  # bytes of the layers it added on top of its parent (du), when the server says
    total_size: int | None = None  # bytes of its whole layer chain
    content_bytes: int | None = None  # bytes of the files it added or changed (what a user means by "added")
    files: int | None = None  # how many files it added or changed
    removed: int | None = None  # how many paths it removed
    layers: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    user: str | None = None
    extended: bool = False  # the server sent x_engine
    operation: str | None = None  # the operation that made it (the spec's operation_uuid), when the server says
    size_from_run: bool = False  # `size` is its producing run's image_size (a server without x_engine)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def image_details(connection: Connection, uuid: str) -> ImageDetails:
    """GET /v1/inspect/{uuid}/ (API errors pass through: NotFoundError for an unknown image)."""
    client = connection.client
    spec = RequestSpec(method="GET", path=f"/inspect/{uuid}/", idempotent=True)
    response = await connection.call(lambda: client.call(spec))
    try:
        data = json.loads(response.body)
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    created = data.get("created_at") if isinstance(data.get("created_at"), str) else None
    operation = data.get("operation_uuid") if isinstance(data.get("operation_uuid"), str) else None
    extension = data.get("x_engine")
    if not isinstance(extension, dict):
        return ImageDetails(uuid, created, operation=operation)
    env = extension.get("env")
    workdir = extension.get("workdir")
    user = extension.get("user")
    return ImageDetails(
        uuid, created, size=_int(extension.get("size")), total_size=_int(extension.get("total_size")),
        layers=_int(extension.get("layers")), content_bytes=_int(extension.get("content_bytes")),
        files=_int(extension.get("files")), removed=_int(extension.get("removed")),
        env={k: v for k, v in env.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(env, dict)
        else {},
        workdir=workdir if isinstance(workdir, str) else None, user=user if isinstance(user, str) else None,
        extended=True, operation=operation)
