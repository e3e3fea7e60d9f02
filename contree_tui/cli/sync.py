"""`contree-tui sync`: the folder into the sandbox now, and on every run (settings remembered)."""

from __future__ import annotations

from contree_tui.cli.console import Console, Options
from contree_tui.client.position import SyncSettings
from contree_tui.client.progress import SyncProgressLine
from contree_tui.client.sizes import human_size
from contree_tui.client.workspace import Workspace


async def sync(ws: Workspace, opts: Options, console: Console) -> int:
    current = ws.sync_settings
    if opts.get("off"):
        ws.save_sync_settings(SyncSettings(False, current.destination, current.excludes))
        console.print(f"sync off for {ws.folder}")
        return 0
    destination = opts.get("dest") or current.destination
    excludes = tuple(opts.get("exclude") or ()) or current.excludes
    settings = SyncSettings(True, destination, excludes)
    syncer = ws.syncer(settings)
    line = SyncProgressLine(console.err, str(ws.folder), syncer.status, live=False if opts.get("json") else None)
    try:
        report = await syncer.sync()
    finally:
        line.close()
    ws.save_sync_settings(settings)
    if opts.get("json"):
        console.json({"folder": str(ws.folder), "destination": destination, "files": len(report.state),
                      "bytes": report.state.total_bytes, "digest": report.state.digest, "hashed": report.hashed,
                      "uploaded": report.uploaded, "uploaded_bytes": report.uploaded_bytes,
                      "added": list(report.added), "changed": list(report.changed), "removed": list(report.removed),
                      "skipped": [str(s) for s in report.skipped]})
        return 0
    console.print(f"{ws.folder} -> {destination}: {len(report.state)} files ({human_size(report.state.total_bytes)}); "
                  f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed; "
                  f"{report.uploaded} uploaded ({human_size(report.uploaded_bytes)})")
    return 0  # skipped files were reported as they were met (dir_scan's warnings, see execute)
