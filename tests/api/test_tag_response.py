"""Setting a second tag on an image answers with that tag: contree-mcp's `set_tag` (seed 000's "Tags are for
frequently-reused images", the `{scope}/{purpose}/{base}` convention) printed the image's first tag instead,
as if the new one had not been set."""

from __future__ import annotations

from contree_client.httpx import ContreeAsyncClient

from contree_tui.engine.models import Image
from tests.api.helpers import run


async def test_the_tag_set_is_the_tag_answered(client: ContreeAsyncClient, busybox: Image) -> None:
    child = (await run(client, busybox.uuid, "echo t > /t")).result_image_uuid
    assert (await client.update_image_tag(child, "first:a")).tag == "first:a"
    second = await client.update_image_tag(child, "scope/py/second:b")
    assert (second.uuid, second.tag) == (child, "scope/py/second:b")
    assert (await client.update_image_tag(child, "first:a")).tag == "first:a"  # set again: still answered
