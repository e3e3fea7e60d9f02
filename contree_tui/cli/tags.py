"""`contree-tui tag [--rm]`: name an image, or remove its names."""

from __future__ import annotations

from contree_client.exceptions import NotFoundError

from contree_tui.cli.console import CommandError, Console, Options
from contree_tui.client.workspace import Workspace


async def tag(ws: Workspace, opts: Options, console: Console) -> int:
    args = list(opts.get("args") or [])
    client = ws.connection.client
    if opts.get("remove"):
        if len(args) > 2:
            raise CommandError("tag --rm: give [IMAGE] TAG, or IMAGE alone to remove all its tags")
        if len(args) == 1 and not _looks_like_image(args[0]):
            name: str | None = args[0]
            image = await ws.resolve_image(f"tag:{name}")
        else:
            image = await ws.resolve_image(args[0] if args else "@")
            name = args[1] if len(args) == 2 else None
        try:
            await ws.connection.call(lambda: client.delete_image_tag(image, tag=name))
        except NotFoundError:
            raise CommandError(f"image {image} has no tag {name!r}") from None
        remaining = () if name is None else tuple(t for t in _tags_of(ws, image) if t != name)
        ws.lineage.set_tags(image, remaining)
        console.print(f"{image} untagged{f' {name}' if name else ''}")
        return 0
    if not 1 <= len(args) <= 2:
        raise CommandError("tag: give [IMAGE] TAG (IMAGE defaults to the working snapshot @)")
    image = await ws.resolve_image(args[0] if len(args) == 2 else "@")
    name = args[-1]
    tagged = await ws.connection.call(lambda: client.update_image_tag(image, name))
    ws.lineage.set_tags(image, tuple(dict.fromkeys((*_tags_of(ws, image), name))))
    ws.lineage.learn_image(tagged)
    console.print(f"{image} tagged {name}")
    return 0


def _looks_like_image(ref: str) -> bool:
    return ref.startswith(("@", "tag:")) or _uuid_like(ref)


def _uuid_like(ref: str) -> bool:
    return len(ref) >= 8 and all(c in "0123456789abcdef-" for c in ref.lower())


def _tags_of(ws: Workspace, image: str) -> tuple[str, ...]:
    record = ws.lineage.tree.image(image)
    return record.tags if record else ()
