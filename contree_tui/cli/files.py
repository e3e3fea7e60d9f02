"""`contree-tui download | export`: a file, or the whole image as an archive, out of an image."""

from __future__ import annotations

import os
from pathlib import Path

from contree_client.exceptions import APIStatusError, NotFoundError

from contree_tui.cli.console import CommandError, Console, Options
from contree_tui.client.image_export import ExportError, default_name, export_image
from contree_tui.client.image_files import save_stream
from contree_tui.client.progress import ByteProgress
from contree_tui.client.sizes import human_size
from contree_tui.client.workspace import Workspace


async def download(ws: Workspace, opts: Options, console: Console) -> int:
    path = opts["path"]
    if not path.startswith("/"):
        raise CommandError(f"download: {path!r} is not an absolute path in the image")
    image = await ws.resolve_image(opts.get("image") or "@")
    client = ws.connection.client
    dest = opts.get("dest") or os.path.basename(path.rstrip("/")) or "download"
    try:
        if dest == "-":
            async for chunk in client.inspect_image_download_stream(image, path):
                console.write_bytes("stdout", chunk)
            return 0
        target = Path(dest)
        if target.is_dir():
            target = target / os.path.basename(path.rstrip("/"))
        size = await save_stream(client.inspect_image_download_stream(image, path), target)
    except NotFoundError:
        raise CommandError(f"no file {path} in image {image}") from None
    except APIStatusError as exc:
        if exc.status == 422:
            raise CommandError(f"{path} in image {image} is not a regular file") from None
        raise
    console.note(f"{path} -> {target} ({human_size(size)})")
    return 0


async def export(ws: Workspace, opts: Options, console: Console) -> int:
    image = await ws.resolve_image(opts["image"])
    record = ws.lineage.tree.image(image)
    name = opts.get("name") or default_name(image, record.tags if record else ())
    fmt = opts.get("format") or "oci-archive"
    progress = ByteProgress(console.err, f"exporting {image[:8]}")
    try:
        result = await export_image(ws.connection, image, fmt, opts["out"], name=name, progress=progress.update)
    except ExportError as exc:
        raise CommandError(f"export: {exc}") from None
    finally:
        progress.finish()
    for note in result.notes:
        console.note(note)
    console.note(f"{image[:8]} -> {result.path} ({fmt}, {result.name}; layer {result.layer_digest[:19]}…, "
                 f"{human_size(result.tar_bytes)} of files, archive {human_size(result.archive_bytes)})")
    return 0
