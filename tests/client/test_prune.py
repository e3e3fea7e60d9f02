"""`contree-tui engine df` and `contree-tui prune` against a served engine of their own (prune deletes what
other tests' folders would not protect): what a folder's position, redo stack and history, a tag or a
running operation reaches is kept with its ancestors; the rest goes, with the layer dirs only it used."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from contree_client.models import OperationStatus

from contree_tui.client.connection import Connection, connect, embedded_target
from tests.client.conftest import FAST, served_engine
from tests.client.test_cli import Cli, one_error_line


@pytest.fixture(scope="module")
def engine_dir() -> Iterator[Path]:
    yield from served_engine("ctp-")


@pytest.fixture
def cli(engine_dir: Path, tmp_path: Path) -> Cli:
    return Cli(engine_dir, tmp_path / "project")


async def _with(engine_dir: Path, work: Any) -> Any:
    connection: Connection = await connect(embedded_target(engine_dir), backoff=FAST)
    try:
        return await work(connection.client)
    finally:
        await connection.aclose()


def api_run(engine_dir: Path, image: str, command: str) -> str:
    """A run made by another client (not through a folder): its result image."""
    async def work(client: Any) -> str:
        spawned = await client.spawn_instance(command, image, shell=True, timeout=60)
        done = await client.wait_operation(spawned.uuid, timeout=120)
        assert done.status == OperationStatus.SUCCESS, done.error
        return str(done.result_image_uuid)
    return asyncio.run(_with(engine_dir, work))


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-s", "-B1", str(path)], check=True, capture_output=True,
                              text=True).stdout.split()[0])


def test_df_and_prune_keep_what_is_reached(cli: Cli, engine_dir: Path) -> None:
    busybox = cli.json("use", "tag:busybox:latest")["image"]  # type: ignore[index]
    cli("run", "--", "echo one > /one")
    first = cli.json("use")["image"]  # type: ignore[index]
    cli("run", "--", "echo two > /two")
    second = cli.json("use")["image"]  # type: ignore[index]
    cli("rollback")  # `second` is on the redo stack now
    cli("run", "--", "echo branch > /branch")  # a new branch: `second` is only in the history now
    position = cli.json("use")["image"]  # type: ignore[index]
    tagged = api_run(engine_dir, busybox, "echo t > /t")
    cli("tag", tagged, "keep:me")
    loose = api_run(engine_dir, busybox, "head -c 300000 /dev/urandom > /loose")
    loose_child = api_run(engine_dir, loose, "echo more > /more")
    busy = api_run(engine_dir, busybox, "echo busy > /busy")
    running = asyncio.run(_with(engine_dir, lambda c: c.spawn_instance("sleep 60", busy, shell=True, timeout=90)))

    usage = df(cli)
    rows = {row["uuid"]: row for row in usage["images"]}  # type: ignore[index]
    layers_dir = engine_dir / "layers"
    for layer in usage["layers"]:  # type: ignore[index]
        assert layer["bytes"] == du(layers_dir / layer["id"])
    loose_layer, child_layer = rows[loose_child]["layers"][-2:]
    assert rows[loose_child]["own"] == du(layers_dir / child_layer)
    assert rows[loose]["own"] == 0, "its layer is shared with its child"
    text = cli("engine", "df").stdout
    assert "busybox:latest" in text and "keep:me" in text and " free of " in text

    grace = cli.json("prune", "--dry-run")
    assert grace["remove"] == [] and grace["kept"][loose].startswith("made less than 60 s ago")  # type: ignore[index]
    dry = cli.json("prune", "--dry-run", "--older-than", "0s")
    assert set(dry["remove"]) == {loose, loose_child}, dry  # type: ignore[index]
    kept = dry["kept"]  # type: ignore[index]
    assert kept[second].startswith("reached from") and kept[position].startswith("reached from")
    assert kept[first].startswith("reached from") and kept[tagged] == "tagged keep:me"
    assert kept[busy].startswith(f"operation {running.uuid[:8]}")
    assert dry["estimated_bytes"] == du(layers_dir / loose_layer) + du(layers_dir / child_layer)  # type: ignore[index]
    assert (layers_dir / loose_layer).is_dir(), "a dry run deletes nothing"
    listed = cli("prune", "--dry-run", "--older-than", "0s")
    assert f"would remove {loose[:8]}" in listed.stdout and "2 of" in listed.stderr

    done = cli.json("prune", "--older-than", "0s")
    assert done["removed"] == [loose_child, loose] and done["refused"] == {}  # type: ignore[index]
    assert done["freed_bytes"] == dry["estimated_bytes"]  # type: ignore[index]
    assert not (layers_dir / loose_layer).exists() and not (layers_dir / child_layer).exists()
    images = {row["uuid"] for row in df(cli)["images"]}  # type: ignore[index]
    assert images == {busybox, first, second, position, tagged, busy}
    assert cli("run", "--image", second, "--", "cat /one /two").stdout == "one\ntwo\n"
    assert cli.json("prune", "--dry-run", "--older-than", "0s")["remove"] == []  # type: ignore[index]

    asyncio.run(_with(engine_dir, lambda c: c.cancel_operation(running.uuid)))


def df(cli: Cli) -> Any:
    return json.loads(cli("engine", "df", "--json").stdout)


def test_older_than_and_bad_durations(cli: Cli, engine_dir: Path) -> None:
    busybox = cli.json("use", "tag:busybox:latest")["image"]  # type: ignore[index]
    young = api_run(engine_dir, busybox, "echo young > /y")
    assert young not in cli.json("prune", "--dry-run", "--older-than", "1h")["remove"]  # type: ignore[index]
    assert young in cli.json("prune", "--dry-run", "--older-than", "0s")["remove"]  # type: ignore[index]
    bad = cli("prune", "--older-than", "soon", ok=False)
    assert bad.returncode == 1 and "30m, 12h, 7d or 2w" in one_error_line(bad.stderr)
    cli("prune", "--older-than", "0s")
    assert not any(row["uuid"] == young for row in df(cli)["images"])  # type: ignore[index]
    assert not [n for n in os.listdir(engine_dir / "runs") if n.startswith("deleted-")], "no trash left behind"
    assert json.loads(cli("prune", "--json", "--older-than", "0s").stdout)["remove"] == []
