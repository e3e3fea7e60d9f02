"""Disk fill (issue #10, item 7): max_layer_bytes holds while a run writes, in many files, disposable or
not; a run that hits it is FAILED with nothing committed and its scratch dir gone; the disk floor holds."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.layer_cap import upper_bytes
from contree_tui.engine.models import Image, OperationStatus
from tests.engine.helpers import stdout

MiB = 1 << 20
CAP = 16 * MiB
# 64 MiB in 1 MiB files: no file is past RLIMIT_FSIZE, so only a cap on the whole layer stops it. Each
# file's outcome is printed; at the end the run reports how much its layer holds.
WRITE_64_FILES = ("i=0; while [ $i -lt 64 ]; do i=$((i+1)); head -c 1048576 /dev/zero > /w$i 2>/dev/null "
                  "|| echo fail$i; done; du -ck /w* | tail -1")


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(path)]


async def scratch_is_gone(engine: Engine, op_uuid: str) -> bool:
    path = engine.state.runs / op_uuid
    for _ in range(200):  # the scratch dir is removed by a thread once the operation has ended
        if not path.exists():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_disposable_run_cannot_write_past_its_cap_in_many_files(engine: Engine, busybox: Image) -> None:
    # Before: 552 MB written under a 100 MiB cap, SUCCESS.
    op = await engine.run({"image": busybox.uuid, "command": WRITE_64_FILES, "shell": True, "disposable": True,
                           "resources_limits": {"max_layer_bytes": CAP}})
    assert op.status == OperationStatus.FAILED, (op.status, op.error)
    assert op.error is not None and op.error.startswith("max_layer_bytes") and str(CAP) in op.error
    out = stdout(op).split()
    layer_kib = int(out[-2])  # `du -ck` total, as the run itself saw it
    assert layer_kib * 1024 <= CAP, f"the layer held {layer_kib} KiB, cap {CAP >> 10} KiB"
    assert "fail17" in out and "fail64" in out  # every write past the cap was refused
    assert op.result_image_uuid is None
    assert await scratch_is_gone(engine, op.uuid)
    assert mounts_under(str(engine.state.runs)) == []


async def test_disposable_run_under_its_cap_is_unaffected(engine: Engine, busybox: Image) -> None:
    op = await engine.run({"image": busybox.uuid, "shell": True, "disposable": True,
                           "command": "head -c 4194304 /dev/zero > /f && du -k /f",
                           "resources_limits": {"max_layer_bytes": CAP}})
    assert op.status == OperationStatus.SUCCESS, op.error
    assert stdout(op).split()[0] == "4096"


async def test_non_disposable_run_past_its_cap_fails_and_commits_nothing(engine: Engine, busybox: Image) -> None:
    images_before = len(engine.store.list_images(limit=1000))
    op = await engine.run({"image": busybox.uuid, "command": WRITE_64_FILES, "shell": True,
                           "resources_limits": {"max_layer_bytes": CAP}})
    assert op.status == OperationStatus.FAILED and op.error is not None and "max_layer_bytes" in op.error
    assert op.result_image_uuid is None
    assert len(engine.store.list_images(limit=1000)) == images_before
    assert await scratch_is_gone(engine, op.uuid)
    assert sorted(os.listdir(engine.state.layers)) == sorted(busybox.layers)


async def test_endless_writer_is_stopped_near_its_cap(engine: Engine, busybox: Image) -> None:
    # A non-disposable writer that never stops on its own: the watchdog stops it. The host samples the
    # upper's size while it runs; the writer may get one poll interval past the cap, not arbitrarily far.
    op = await engine.spawn({"image": busybox.uuid, "shell": True, "timeout": 60,
                             "command": "i=0; while :; do i=$((i+1)); head -c 1048576 /dev/zero > /w$i; done",
                             "resources_limits": {"max_layer_bytes": CAP}})
    upper = str(engine.state.runs / op.uuid / "upper")
    peak = 0
    waiter = asyncio.ensure_future(engine.wait(op.uuid))
    while not waiter.done():
        peak = max(peak, await asyncio.to_thread(upper_bytes, upper) if os.path.isdir(upper) else 0)
        await asyncio.sleep(0.005)
    done = await waiter
    assert done.status == OperationStatus.FAILED and done.error is not None
    assert done.error.startswith("max_layer_bytes: the run wrote at least"), done.error
    seen = int(done.error.split()[6])  # what the watchdog measured when it stopped the run
    assert CAP < seen < CAP + 256 * MiB, done.error
    assert peak < CAP + 256 * MiB, f"peak {peak >> 20} MiB"  # the host's own samples agree
    assert await scratch_is_gone(engine, op.uuid)


async def test_spawn_below_the_disk_floor_fails_with_the_reason(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    """A FAILED operation, not a 507 to the POST: contree-cli retries every 5xx without end."""
    free = os.statvfs("/tmp").f_bavail * os.statvfs("/tmp").f_frsize
    engine = await open_engine(EngineConfig(min_free_bytes=free * 2))
    image = await engine.ensure_busybox()
    op = await engine.spawn({"image": image.uuid, "command": "echo never > /x"})
    done = await engine.wait(op.uuid)
    assert done.status == OperationStatus.FAILED, done
    assert done.error is not None and done.error.startswith("spawn: the engine's disk is nearly full ("), done.error
    assert done.result_image_uuid is None


async def test_leftover_tmpfs_uppers_are_unmounted_on_restart(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    from contree_tui.engine.layer_cap import mount_layer_tmpfs

    engine = await open_engine()
    runs = str(engine.state.runs)
    await engine.close()
    mount_layer_tmpfs(f"{runs}/crashed-run", CAP)  # as an engine killed mid-run leaves it
    assert mounts_under(runs)
    await open_engine()
    assert mounts_under(runs) == [] and os.listdir(runs) == []
