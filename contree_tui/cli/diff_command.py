"""`contree-tui diff A [B]`: what changed from image A to image B (default @, the working snapshot), printed
as a unified diff a patch tool or a pager reads: each text file's hunks under `--- a/PATH` / `+++ b/PATH`
(an added file from /dev/null, a removed one to it), `Binary files … differ` with the sizes for a binary or a
file past the 1 MiB a side a diff reads, and a `# ~ PATH: what` comment for a directory, a symlink, a mode
change. The count of added / modified / removed goes to stderr. A and B: anything `run --image` takes (a
uuid or its start, a tag, @, @-N).

Kept apart from commands.py (the registry calls in here), which is long enough.
"""

from __future__ import annotations

from typing import Any

from contree_client.models import Image

from contree_tui.client.file_diff import DiffKind, diff_file
from contree_tui.client.image_files import ImageFiles
from contree_tui.client.records import parse_time
from contree_tui.client.snapshot_diff import Change, FileChange, diff_images
from contree_tui.client.workspace import Workspace


async def diff(ws: Workspace, opts: dict[str, Any], console: Any) -> int:
    base = await ws.resolve_image(opts["base"])
    target = await ws.resolve_image(opts.get("target") or "@")
    image = await ws.connection.call(lambda: ws.connection.client.inspect_image(base))
    created = parse_time(image.created_at) if isinstance(image, Image) and image.created_at else None
    files = ImageFiles(ws.connection)
    found = await diff_images(files, base, target, parent_created=created)
    for change in found.changes:
        for line in await _change_lines(files, base, target, change):
            console.print(line)
    console.note(f"{base[:8]} → {target[:8]}: {found.summary}")
    return 0


async def _change_lines(files: ImageFiles, base: str, target: str, change: FileChange) -> list[str]:
    if change.kind != "file" or (change.change is Change.MODIFIED and change.detail in ("mtime only", "mtime")):
        shown = change.path + ("/" if change.kind == "dir" else "")
        return [f"# {change.change.sign} {shown}: {change.detail or change.change.value} ({change.kind})"]
    old = None if change.change is Change.ADDED else base
    new = None if change.change is Change.REMOVED else target
    found = await diff_file(files, old, new, change.path)
    old_name = f"a{change.path}" if old else "/dev/null"
    new_name = f"b{change.path}" if new else "/dev/null"
    if found.kind is not DiffKind.TEXT:
        return [f"Binary files {old_name} and {new_name} differ ({found.sizes})"]
    lines = found.unified_text(old_name, new_name)
    if not lines:  # an empty file added or removed, or a mode change only
        return [f"# {change.change.sign} {change.path}: {change.detail or change.change.value}"]
    if change.detail and change.change is Change.MODIFIED and change.detail != "content":
        lines.insert(0, f"# ~ {change.path}: {change.detail}")
    return lines
