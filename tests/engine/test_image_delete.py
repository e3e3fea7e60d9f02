"""Deleting images and measuring disk: rows and layer dirs go together, what another image still uses stays,
an interrupted delete is finished by the next start, and df's numbers are du's."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import Conflict, EngineError, NotFound, OperationStatus
from tests.engine.helpers import sh, stdout
from tests.engine.test_image_import import imported
from tests.images.busybox_layouts import busybox_layer
from tests.images.oci_build import write_layout

OpenEngine = Callable[..., Awaitable[Engine]]


def du(*paths: str) -> int:
    """`du -s -B1` over the paths together (an inode they share counted once)."""
    out = subprocess.run(["du", "-s", "-c", "-B1", *paths], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


async def child(engine: Engine, image: str, script: str) -> str:
    op = await sh(engine, image, script)
    assert op.status is OperationStatus.SUCCESS and op.result_image_uuid not in (None, image), op.error
    return op.result_image_uuid


async def test_delete_removes_the_row_and_the_layer_only_it_used(engine: Engine) -> None:
    busybox = await engine.ensure_busybox()
    result = await child(engine, busybox.uuid, "head -c 300000 /dev/zero > /big")
    top = engine.store.get_image(result).layers[-1]
    assert os.path.isdir(engine.layer_path(top))

    freed = await engine.delete_image(result)
    assert freed == [top]
    assert not os.path.exists(engine.layer_path(top))
    assert engine.store.find_image(result) is None
    assert not [n for n in os.listdir(engine.state.runs) if n.startswith("deleted-")], "no trash left"
    with pytest.raises(EngineError, match="no image") as refused:  # a spawn naming no image: 400, as the spec lists
        await engine.run({"image": result, "command": "true"})
    assert refused.value.status in (None, 400)
    # the base it was made from is untouched
    assert stdout(await sh(engine, busybox.uuid, "echo ok")) == "ok\n"
    with pytest.raises(NotFound):
        await engine.delete_image(result)


async def test_refused_while_tagged_running_or_read(engine: Engine) -> None:
    busybox = await engine.ensure_busybox()
    with pytest.raises(Conflict, match="tagged busybox:latest"):
        await engine.delete_image(busybox.uuid)

    image = await child(engine, busybox.uuid, "echo x > /x")
    running = await engine.spawn({"image": image, "command": "sleep 30", "shell": True})
    with pytest.raises(Conflict, match=f"in use by operation {running.uuid}"):
        await engine.delete_image(image)
    await engine.cancel(running.uuid)
    await engine.wait(running.uuid)

    _header, helper = await engine.open_in_image(engine.store.get_image(image), "archive", "/")
    with pytest.raises(Conflict, match="being read"):
        await engine.delete_image(image)
    helper.close()
    await helper.exit_code()
    await engine.delete_image(image)
    assert engine.store.find_image(image) is None


async def test_deleting_a_parent_keeps_its_children_whole(engine: Engine) -> None:
    busybox = await engine.ensure_busybox()
    parent = await child(engine, busybox.uuid, "echo from-parent > /p")
    kid = await child(engine, parent, "echo from-child > /c")
    parent_layer = engine.store.get_image(parent).layers[-1]
    assert engine.store.get_image(kid).layers[:-1] == engine.store.get_image(parent).layers

    added = (await engine.disk.image_extension(engine.store.get_image(kid)))["size"]
    assert await engine.delete_image(parent) == [], "the child still lists the parent's layer"
    assert (await engine.disk.image_extension(engine.store.get_image(kid)))["size"] == added
    assert os.path.isdir(engine.layer_path(parent_layer))
    assert stdout(await sh(engine, kid, "cat /p /c")) == "from-parent\nfrom-child\n"
    grandchild = await child(engine, kid, "echo more > /g")
    assert stdout(await sh(engine, grandchild, "cat /p /c /g")) == "from-parent\nfrom-child\nmore\n"

    kid_layers = set(engine.store.get_image(kid).layers)
    await engine.delete_image(grandchild)
    freed = await engine.delete_image(kid)
    assert set(freed) == kid_layers - set(busybox.layers)
    assert not os.path.exists(engine.layer_path(parent_layer))


async def test_an_interrupted_delete_is_finished_by_the_next_start(open_engine: OpenEngine) -> None:
    engine = await open_engine()
    busybox = await engine.ensure_busybox()
    image = await child(engine, busybox.uuid, "echo x > /x")
    layer = engine.store.get_image(image).layers[-1]
    # the first step only (rows in one transaction), as if the engine died before removing the dir ...
    assert engine.store.delete_image(image) == {layer}
    # ... and a second delete that died mid-removal, after renaming its layer into runs/
    trash = engine.state.runs / "deleted-0123abcd"
    (trash / "usr").mkdir(parents=True)
    await engine.close()
    assert os.path.isdir(engine.layer_path(layer))

    again = await open_engine()
    assert not os.path.exists(again.layer_path(layer)) and not trash.exists()
    assert sorted(os.listdir(again.state.layers)) == sorted(busybox.layers)
    assert stdout(await sh(again, busybox.uuid, "echo still")) == "still\n"


async def test_df_numbers_are_dus(engine: Engine) -> None:
    busybox = await engine.ensure_busybox()
    a = await child(engine, busybox.uuid, "head -c 200000 /dev/urandom > /a && mkdir -p /d/e")
    b = await child(engine, a, "head -c 50000 /dev/urandom > /b && ln /b /b2")
    layers_dir = str(engine.state.layers)
    usage = await engine.disk_usage()

    by_layer = {row["id"]: row for row in usage["layers"]}
    for layer in os.listdir(layers_dir):
        assert by_layer[layer]["bytes"] == du(f"{layers_dir}/{layer}"), layer
    assert usage["total"]["layer_bytes"] == du(*(f"{layers_dir}/{layer}" for layer in os.listdir(layers_dir)))
    rows = {row["uuid"]: row for row in usage["images"]}
    base, la, lb = (du(engine.layer_path(layer)) for layer in engine.store.get_image(b).layers)
    assert rows[b]["own"] == lb and rows[b]["shared"] == base + la  # only b lists its layer
    assert rows[a]["own"] == 0 and rows[a]["shared"] == base + la  # b shares all of a's chain
    assert rows[busybox.uuid]["own"] == 0 and rows[busybox.uuid]["shared"] == base
    assert usage["total"]["images"] == 3 and usage["total"]["unreferenced_bytes"] == 0
    assert 0 < usage["filesystem"]["free"] <= usage["filesystem"]["size"]

    extension = await engine.disk.image_extension(engine.store.get_image(b))
    assert extension["size"] == lb and extension["total_size"] == du(*(engine.layer_path(x) for x in
                                                                        engine.store.get_image(b).layers))
    assert extension["layers"] == 3 and extension["env"]["PATH"].startswith("/usr/local/sbin")


async def test_a_deleted_chain_frees_its_squash_cache(open_engine: OpenEngine) -> None:
    engine = await open_engine(EngineConfig(squash_at=4))
    busybox = await engine.ensure_busybox()
    chain = [busybox.uuid]
    for i in range(6):
        chain.append(await child(engine, chain[-1], f"echo {i} > /f{i}"))
    assert engine.store.squash_cache(), "the chain was deep enough to squash"
    for image in reversed(chain[1:]):
        await engine.delete_image(image)
    assert not engine.store.squash_cache()
    assert sorted(os.listdir(engine.state.layers)) == sorted(busybox.layers)
    assert not [n for n in os.listdir(engine.state.runs) if n.startswith("deleted-")]


async def test_deleting_imports_forgets_their_source_and_diff_ids(engine: Engine, tmp_path: Path) -> None:
    base = busybox_layer(**{"etc/base": b"base\n"})
    first = write_layout(tmp_path / "a", [base, {"etc/a": b"a\n"}])
    write_layout(tmp_path / "b", [base, {"etc/b": b"b\n"}])
    a = (await imported(engine, f"oci:{tmp_path / 'a'}")).result_image_uuid
    b = (await imported(engine, f"oci:{tmp_path / 'b'}")).result_image_uuid
    image_a, image_b = engine.store.get_image(a), engine.store.get_image(b)
    shared = image_a.layers[0]
    assert image_b.layers[0] == shared

    # a's own top layer goes with its diff id; the base b shares stays, still reusable by diff id
    assert await engine.delete_image(a) == [image_a.layers[1]]
    assert engine.store.layer_by_diff_id(first.diff_ids[1]) is None
    assert (engine.store.layer_by_diff_id(first.diff_ids[0]) or ("",))[0] == shared
    again = await imported(engine, f"oci:{tmp_path / 'a'}")
    assert again.status is OperationStatus.SUCCESS and again.result_image_uuid != a, "a new image, not the gone one"
    assert stdout(await sh(engine, again.result_image_uuid, "cat /etc/base /etc/a")) == "base\na\n"
    reused = [e.data for e in engine.store.events(again.uuid) if e.type == "import_progress"]
    assert ("reuse", 0) in [(d["phase"], d["layer"]) for d in reused]

    # a layer an import in progress holds (pinned) survives the delete of the last image listing it
    await engine.delete_image(again.result_image_uuid)
    top_b = image_b.layers[1]
    assert engine.store.delete_image(b, keep={top_b, shared}) == set()
    assert os.path.isdir(engine.layer_path(top_b)) and engine.store.layer_by_diff_id(first.diff_ids[0])
