"""The first contact: whoami and one run through the official client."""

from __future__ import annotations

from contree_client.httpx import ContreeAsyncClient

from contree_tui.engine.models import Image
from tests.api.helpers import run, text


async def test_whoami_and_a_run(client: ContreeAsyncClient, busybox: Image) -> None:
    me = await client.whoami()
    assert me.permissions["spawn"] is True and me.limits["instance_max_timeout"] == 3600
    op = await run(client, busybox.uuid, "echo hello")
    assert op.status.value == "SUCCESS"
    assert text(op.metadata.result.stdout) == "hello\n"
