"""`contree-tui engine df | prune`: disk used per image, and deleting what nothing reaches."""

from __future__ import annotations

from datetime import UTC, datetime

from contree_tui.cli.console import Console, Options
from contree_tui.cli.render import (
    clip,
    local_time,
)
from contree_tui.client.disk import disk_usage, make_plan, parse_duration, prune
from contree_tui.client.sizes import human_size
from contree_tui.client.workspace import Workspace


async def df(ws: Workspace, opts: Options, console: Console) -> int:
    usage = await disk_usage(ws.connection)
    if opts.get("json"):
        console.json(usage)
        return 0
    await ws.lineage.refresh()
    tree = ws.lineage.tree
    console.print(f"{'IMAGE':<10} {'CREATED':<19} {'OWN':>10} {'SHARED':>10}  TAGS / COMMAND")
    for row in sorted(usage["images"], key=lambda r: (r["created_at"], r["uuid"])):
        op = tree.producing_operation(row["uuid"])
        what = ", ".join(row["tags"]) or (clip(op.command, 50) if op and op.command else "")
        created = local_time(datetime.fromtimestamp(row["created_at"], UTC))
        console.print(f"{row['uuid'][:8]:<10} {created:<19} {human_size(row['own']):>10} "
                      f"{human_size(row['shared']):>10}  {what}")
    total, fs = usage["total"], usage["filesystem"]
    unreferenced = f", {human_size(total['unreferenced_bytes'])} in layers no image uses" \
        if total["unreferenced_bytes"] else ""
    console.print(f"{total['images']} images, {total['layers']} layers: {human_size(total['layer_bytes'])} on disk"
                  f"{unreferenced}; {human_size(fs['free'])} free of {human_size(fs['size'])}")
    return 0


async def prune_command(ws: Workspace, opts: Options, console: Console) -> int:
    older = opts.get("older_than")
    await ws.lineage.refresh(full=True)
    plan = await make_plan(ws.connection, ws.lineage.tree, ws.positions,
                           older_than=parse_duration(older) if older else None)
    if opts.get("dry_run") or not plan.remove:
        if opts.get("json"):
            console.json({"dry_run": bool(opts.get("dry_run")), "remove": [c.uuid for c in plan.remove],
                          "estimated_bytes": plan.estimated_bytes, "kept": plan.kept})
            return 0
        for candidate in plan.remove:
            when = local_time(datetime.fromtimestamp(candidate.created_at, UTC))
            console.print(f"would remove {candidate.uuid[:8]}  {when}  {human_size(candidate.own):>10}  "
                          f"{clip(candidate.command, 50) if candidate.command else ''}".rstrip())
        estimate = f", ~{human_size(plan.estimated_bytes)}" if plan.estimated_bytes is not None else ""
        console.note(f"{len(plan.remove)} of {plan.images} images unreferenced{estimate}"
                     f"{'' if plan.remove else ': nothing to remove'}")
        return 0
    result = await prune(ws.connection, plan.remove)
    await ws.lineage.refresh(full=True)  # forget what is gone
    if opts.get("json"):
        console.json({"removed": result.removed, "refused": dict(result.refused), "freed_bytes": result.freed_bytes})
        return 0
    for uuid in result.removed:
        console.print(f"removed {uuid}")
    for uuid, reason in result.refused:
        console.note(f"kept {uuid[:8]}: {reason}")
    console.note(f"removed {len(result.removed)} images, freed {human_size(result.freed_bytes)}")
    return 0
