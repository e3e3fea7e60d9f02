"""`contree-tui rollback | forward | use | history`: the folder's working snapshot and how it moved."""

from __future__ import annotations

from typing import Any

from contree_tui.cli.console import CommandError, Console, Options
from contree_tui.cli.render import (
    history_lines,
    image_label,
)
from contree_tui.client.position import HistoryEntry
from contree_tui.client.workspace import Workspace


def _position_json(ws: Workspace, entry: HistoryEntry | None = None) -> dict[str, Any]:
    position = ws.position.reload()
    image = ws.lineage.tree.image(position.image) if position.image else None
    return {"folder": position.folder, "image": position.image, "tags": list(image.tags) if image else [],
            "previous": entry.previous if entry else None, "redo": list(position.redo)}


def _print_position(ws: Workspace, console: Console, opts: Options, entry: HistoryEntry | None) -> int:
    if opts.get("json"):
        console.json(_position_json(ws, entry))
        return 0
    position = ws.position.reload()
    if position.image is None:
        console.print("no working snapshot yet (the next run starts from the default image)")
        return 0
    label = image_label(ws.lineage.tree.image(position.image), position.image)
    redo = f"  (forward: {len(position.redo)})" if position.redo else ""
    console.print(f"{label}{redo}")
    return 0


async def rollback(ws: Workspace, opts: Options, console: Console) -> int:
    await ws.lineage.refresh()
    current = ws.position.image
    if current is not None and current not in ws.lineage.tree:
        raise CommandError(f"the working snapshot {current} is not among {ws.connection.target.describe()}'s "
                           "images any more (`contree-tui use IMAGE` picks another)")
    entry = ws.position.rollback(ws.lineage.tree.parent, int(opts.get("steps") or 1))
    return _print_position(ws, console, opts, entry)


async def forward(ws: Workspace, opts: Options, console: Console) -> int:
    entry = ws.position.forward(int(opts.get("steps") or 1))
    await ws.lineage.refresh()
    return _print_position(ws, console, opts, entry)


async def use(ws: Workspace, opts: Options, console: Console) -> int:
    ref = opts.get("image")
    entry = None
    if ref:
        image = await ws.resolve_image(ref)
        await ws.lineage.refresh()
        entry = ws.position.jump(image, ancestors=ws.lineage.tree.ancestors, note=ref)
    return _print_position(ws, console, opts, entry)


async def history(ws: Workspace, opts: Options, console: Console) -> int:
    entries = ws.position.history(opts.get("limit"))
    if opts.get("json"):
        console.json([e.to_json() for e in entries])
        return 0
    for line in history_lines(entries):
        console.print(line)
    return 0
