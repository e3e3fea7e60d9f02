"""Disk the images take, and reclaiming it: `contree-tui engine df` and `contree-tui prune`.

The numbers and the deletes are the engine's (our API extensions GET /v1/x/df and DELETE /v1/x/images/{uuid},
see engine/http/routes_disk.py); what may be deleted is decided here, because only the client knows what
its users can still reach:

- a tag (the server knows these too, and refuses to delete a tagged image);
- an operation still running on the image (likewise refused by the server);
- any folder's working position, its redo stack (`forward`) and its history (`history`, the TUI's command
  log): all of them are in one file for every folder, $XDG_CACHE_HOME/contree-tui/positions.sqlite
  (position.py), keyed by target, so prune sees every folder this user ever worked in on this target, also
  folders that no longer exist on disk (kept: the file cannot tell a deleted folder from an unmounted one);
- and the ancestors of all of the above, so a `rollback` from any kept image still finds its parents.

Everything else, created more than `older_than` ago (GRACE when not given), is removed, newest first
(children before their parents). Images made by other clients (contree-cli, the SDK, an agent through
contree-mcp) are reached by none of the above unless tagged: tag what such a client should keep.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from contree_client.exceptions import APIStatusError
from contree_client.runtime import RequestSpec

from contree_tui.client.connection import Connection
from contree_tui.client.lineage import LineageTree
from contree_tui.client.position import PositionStore

# Without --older-than, images younger than this stay: a run's result exists a moment before its client
# records it as the folder's position (the completion event, then the write), and prune must not win that race.
GRACE = 60.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class DiskError(Exception):
    """A disk command that cannot be done; `str()` says why."""


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `12h`, `7d`, `2w` → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise DiskError(f"--older-than {text!r}: give a number and a unit, e.g. 30m, 12h, 7d or 2w")
    return float(match.group(1)) * _UNIT[match.group(2)]


def _unsupported(connection: Connection, what: str) -> DiskError:
    return DiskError(f"{connection.target.describe()} cannot {what}: this is an extension of contree-tui's "
                     "embedded engine (GET /v1/x/df, DELETE /v1/x/images/{uuid}), which this Contree does not offer")


async def disk_usage(connection: Connection) -> dict[str, Any]:
    """The engine's GET /v1/x/df answer."""
    client = connection.client
    spec = RequestSpec(method="GET", path="/x/df", idempotent=True)
    try:
        response = await connection.call(lambda: client.call(spec))
    except APIStatusError as exc:
        if exc.status in (404, 405):
            raise _unsupported(connection, "report disk usage") from None
        raise
    data = json.loads(response.body)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise _unsupported(connection, "report disk usage")
    return data


class DeleteRefused(Exception):
    """The server would not delete the image (409: tagged, in use, being read); `str()` is its reason."""


async def delete_image(connection: Connection, uuid: str) -> None:
    client = connection.client
    spec = RequestSpec(method="DELETE", path=f"/x/images/{uuid}", idempotent=True)
    try:
        await connection.call(lambda: client.call(spec))
    except APIStatusError as exc:
        if exc.status == 409:
            raise DeleteRefused(str(exc.error)) from None
        if exc.status == 404 and isinstance(exc.error, str) and "not found" in exc.error:
            return  # deleted meanwhile (another prune): what was asked is done
        if exc.status in (404, 405):
            raise _unsupported(connection, "delete images") from None
        raise


@dataclass(frozen=True)
class Candidate:
    uuid: str
    created_at: float
    own: int | None  # bytes only it references (df), when the server says
    command: str | None = None


@dataclass
class PrunePlan:
    remove: list[Candidate]
    kept: dict[str, str]  # uuid -> why
    images: int
    estimated_bytes: int | None  # layers only the removed images reference, when the server says
    usage: dict[str, Any] | None = None


@dataclass
class PruneResult:
    removed: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    freed_bytes: int | None = None


def protected(tree: LineageTree, positions: dict[str, str]) -> dict[str, str]:
    """Images prune must keep, with why: tags, running operations, folders' positions and history, and every
    ancestor of those."""
    why: dict[str, str] = {}
    for uuid, image in tree.images.items():
        if image.tags:
            why[uuid] = f"tagged {', '.join(image.tags)}"
    for op in tree.operations.values():
        if not op.terminal and op.image_uuid:
            why.setdefault(op.image_uuid, f"operation {op.short} is {op.status.value}")
    for uuid, folder in positions.items():
        why.setdefault(uuid, f"reached from {folder}")
    for uuid in list(why):
        for ancestor in tree.ancestors(uuid):
            why.setdefault(ancestor, f"an ancestor of {uuid[:8]}")
    return why


def plan(tree: LineageTree, positions: dict[str, str], *, older_than: float | None, now: float,
         usage: dict[str, Any] | None) -> PrunePlan:
    keep = protected(tree, positions)
    own = {row["uuid"]: row.get("own") for row in usage["images"]} if usage else {}
    cutoff = now - (older_than if older_than is not None else GRACE)
    remove = []
    for uuid, image in tree.images.items():
        if uuid in keep:
            continue
        created = image.created_at.timestamp()
        if created > cutoff:
            keep[uuid] = "younger than --older-than" if older_than is not None else \
                f"made less than {GRACE:.0f} s ago (--older-than 0s includes it)"
            continue
        op = tree.producing_operation(uuid)
        remove.append(Candidate(uuid, created, own.get(uuid), op.command if op else None))
    remove.sort(key=lambda c: (c.created_at, c.uuid), reverse=True)  # children (newer) before parents
    return PrunePlan(remove, keep, len(tree.images), _estimate(usage, {c.uuid for c in remove}), usage)


def _estimate(usage: dict[str, Any] | None, removing: set[str]) -> int | None:
    """Bytes of the layers every referencing image of which is being removed."""
    if usage is None:
        return None
    users: dict[str, set[str]] = {}
    for row in usage["images"]:
        for layer in row.get("layers", []):
            users.setdefault(layer, set()).add(row["uuid"])
    sizes = {row["id"]: row["bytes"] for row in usage.get("layers", [])}
    return sum(sizes.get(layer, 0) for layer, images in users.items() if images <= removing)


async def make_plan(connection: Connection, tree: LineageTree, positions: PositionStore, *,
                    older_than: float | None) -> PrunePlan:
    try:
        usage: dict[str, Any] | None = await disk_usage(connection)
    except DiskError:
        usage = None  # a Contree without the extension: the plan still says what would go
    return plan(tree, positions.referenced_images(connection.cache_key), older_than=older_than, now=time.time(),
                usage=usage)


async def prune(connection: Connection, to_remove: list[Candidate]) -> PruneResult:
    before = await disk_usage(connection)
    result = PruneResult()
    for candidate in to_remove:
        try:
            await delete_image(connection, candidate.uuid)
        except DeleteRefused as exc:
            result.refused.append((candidate.uuid, str(exc)))
            continue
        result.removed.append(candidate.uuid)
    after = await disk_usage(connection)
    result.freed_bytes = max(0, before["total"]["layer_bytes"] - after["total"]["layer_bytes"])
    return result
