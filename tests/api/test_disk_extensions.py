"""Our disk extensions over HTTP (GET /v1/x/df, DELETE /v1/x/images/{uuid}, `x_engine` in the inspect JSON),
and that the official clients still read an image whose JSON carries the extension."""

from __future__ import annotations

import httpx
from contree_client.httpx import ContreeAsyncClient

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image
from tests.api.helpers import run

MISSING = "00000000-0000-4000-8000-000000000000"


async def test_df_delete_and_the_inspect_extension(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                   engine: Engine, busybox: Image) -> None:
    child = (await run(client, busybox.uuid, "head -c 100000 /dev/urandom > /x")).result_image_uuid
    inspected = await raw.get(f"/v1/inspect/{child}/")
    extension = inspected.json()["x_engine"]
    assert 100000 <= extension["size"] < 150000 and extension["total_size"] > 1_000_000
    assert extension["layers"] == 2
    assert (await client.inspect_image(child)).uuid == child  # the official client ignores the extension

    df = (await raw.get("/v1/x/df")).json()
    rows = {row["uuid"]: row for row in df["images"]}
    assert rows[child]["own"] == extension["size"] and rows[busybox.uuid]["own"] == 0
    assert df["total"]["images"] == 2 and df["filesystem"]["free"] > 0

    tagged = await raw.delete(f"/v1/x/images/{busybox.uuid}")
    assert tagged.status_code == 409 and "tagged busybox:latest" in tagged.json()["error"]
    assert (await raw.delete(f"/v1/x/images/{MISSING}")).status_code == 404
    assert (await raw.delete("/v1/x/images/not-a-uuid")).status_code == 400
    gone = await raw.delete(f"/v1/x/images/{child}")
    assert gone.status_code == 204
    assert [i.uuid for i in (await client.list_images()).images] == [busybox.uuid]
    assert (await raw.get("/v1/x/df")).json()["total"]["layers"] == 1
