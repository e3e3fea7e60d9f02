"""Issue #10, "sandbox uid 0 should not be host uid 0". Before: a run's root was host root (kuid 0), so
whatever of the host a run could reach, its root could change: `chmod 0666 /dev/null` in a run (the
sandbox's /dev/null is a bind of the host's node) succeeded, as would a chmod 0000 breaking the host; a
setuid-root program of an image ran as host root. Now every sandbox runs in the engine's user namespace
(userns.py), its ids 0..65535 being host ids BASE..BASE+65535: the host sees a sandbox's processes as BASE+uid,
and host-owned inodes are out of its root's reach. Before the fix `uid_map` read `0 0 4294967295`, the
host saw Uid 0 and the chmod succeeded: every test here failed."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import EngineError, OperationStatus
from contree_tui.engine.output import decode_stream
from tests.engine.helpers import sh, stdout
from tests.security.probing import build_static

# Prints its real and effective uid, then sleeps: the host reads its /proc/<pid>/status meanwhile.
IDS_SLEEP = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    printf("ids=%d,%d\n", (int)getuid(), (int)geteuid());
    fflush(stdout);
    sleep(60);
    return 0;
}
"""


@pytest.fixture(scope="session")
def ids_sleep(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_static(tmp_path_factory, "ids-sleep", IDS_SLEEP)


def _base(engine: Engine) -> int:
    assert engine.users is not None
    return engine.users.ids.uid_base


def _status_ids(pid: int) -> tuple[list[int], list[int]]:
    text = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return [int(v) for v in fields["Uid"].split()], [int(v) for v in fields["Gid"].split()]


async def _command_host_pid(engine: Engine, op_uuid: str, deadline: float = 10.0) -> tuple[int, int]:
    """(pid 1's host pid, the command's host pid) once the command runs its own program (not pid 1's fork)."""
    limit = time.monotonic() + deadline
    while time.monotonic() < limit:
        run = engine.instance_run(op_uuid)
        if run is not None and run.sandbox_pid and run.command_pid:
            try:
                children = Path(f"/proc/{run.sandbox_pid}/task/{run.sandbox_pid}/children").read_text().split()
                if children and "ids-sleep" in os.readlink(f"/proc/{children[0]}/exe"):
                    return run.sandbox_pid, int(children[0])
            except OSError:
                pass
        await asyncio.sleep(0.01)
    raise AssertionError("the command did not start")


async def test_the_sandbox_maps_its_ids_to_an_unprivileged_host_range(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    base = _base(engine)
    assert base >= 100_000 and engine.users is not None and engine.users.ids.count == 65536
    op = await sh(engine, image, "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; grep ^Uid /proc/self/status",
                  disposable=True)
    lines = [line.split() for line in stdout(op).splitlines()]
    assert lines == [["0", str(base), "65536"], ["0", str(engine.users.ids.gid_base), "65536"], ["0"], ["0"],
                     ["Uid:", "0", "0", "0", "0"]]


async def test_the_host_sees_a_sandboxed_process_as_base_plus_its_uid(keeper_engine: tuple[Engine, str],
                                                                     ids_sleep: bytes) -> None:
    engine, image = keeper_engine
    base, gbase = _base(engine), engine.users.ids.gid_base  # type: ignore[union-attr]
    blob = engine.add_file(ids_sleep)
    for uid, gid in ((0, 0), (1000, 1001)):
        op = await engine.spawn({"image": image, "command": "/ids-sleep", "uid": uid, "gid": gid, "disposable": True,
                                 "files": {"/ids-sleep": {"uuid": blob.uuid, "mode": "0755"}}})
        pid1, command = await _command_host_pid(engine, op.uuid)
        assert _status_ids(command) == ([base + uid] * 4, [gbase + gid] * 4)
        assert _status_ids(pid1) == ([base + uid] * 4, [gbase + gid] * 4)  # pid 1 dropped to the run's ids too
        assert os.stat(f"/proc/{command}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino
        await engine.cancel(op.uuid)


async def test_a_setuid_root_program_of_an_image_is_host_base_not_root(keeper_engine: tuple[Engine, str],
                                                                      ids_sleep: bytes) -> None:
    engine, image = keeper_engine
    base = _base(engine)
    blob = engine.add_file(ids_sleep)
    made = await sh(engine, image, "cp /staged /bin/ids-sleep && chmod 4755 /bin/ids-sleep",
                    files={"/staged": {"uuid": blob.uuid, "mode": "0755"}})
    assert made.status is OperationStatus.SUCCESS and made.result_image_uuid
    layer = engine.layer_path(engine.store.get_image(made.result_image_uuid).layers[-1])
    on_disk = os.lstat(f"{layer}/bin/ids-sleep")
    assert (on_disk.st_uid, on_disk.st_gid, on_disk.st_mode & 0o7777) == (0, 0, 0o4755)  # canonical on disk
    op = await engine.spawn({"image": made.result_image_uuid, "command": "/bin/ids-sleep", "uid": 1000, "gid": 1000,
                             "disposable": True})
    _, command = await _command_host_pid(engine, op.uuid)
    uids, _ = _status_ids(command)
    assert uids == [base + 1000, base, base, base]  # real, effective, saved, fs: root inside is BASE outside
    done = await engine.cancel(op.uuid)
    assert done.status is OperationStatus.CANCELLED


async def test_host_owned_inodes_are_out_of_the_sandbox_roots_reach(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    before = os.stat("/dev/null")
    # The same mode and owner it has: a change that is no change, should it be allowed (it was, before).
    op = await sh(engine, image, "chmod 0666 /dev/null; echo chmod=$?; chown 0:0 /dev/null; echo chown=$?;"
                  " ls -ln /dev/null", disposable=True)
    out = stdout(op)
    assert "chmod=1" in out and "chown=1" in out, out
    assert " 65534 " in out.splitlines()[-1]  # host root is nobody in the sandbox
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_uid, after.st_ctime_ns) == (before.st_mode, before.st_uid, before.st_ctime_ns)


async def test_ids_beyond_the_mapped_range_are_refused(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    with pytest.raises(EngineError, match="at most 65535") as raised:
        await engine.spawn({"image": image, "command": "true", "uid": 65536})
    assert raised.value.status == 400
    blob = engine.add_file(b"x")
    with pytest.raises(EngineError, match="below 65536"):
        await engine.spawn({"image": image, "command": "true",
                            "files": {"/f": {"uuid": blob.uuid, "mode": "0644", "uid": 70000}}})


async def test_a_process_exec_d_into_a_running_sandbox_joins_its_user_namespace(
        keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    op = await engine.spawn({"image": image, "command": "while [ ! -e /done ]; do sleep 0.02; done", "shell": True})
    limit = time.monotonic() + 10
    while not ((run := engine.instance_run(op.uuid)) and run.command_pid) and time.monotonic() < limit:
        await asyncio.sleep(0.01)
    spid = await engine.exec_process(op.uuid, {
        "command": "cat /proc/self/uid_map; id -u; echo x > /by-exec; echo y > /by-exec-1000;"
                   " chown 1000:1000 /by-exec-1000; touch /done", "shell": True})
    done = await engine.wait(op.uuid)
    assert done.status is OperationStatus.SUCCESS and done.result_image_uuid
    out = b"".join(decode_stream(e.data) for e in engine.store.events(op.uuid, spid=spid) if e.type == "stdout")
    assert [line.split() for line in out.decode().splitlines()] == [["0", str(_base(engine)), "65536"], ["0"]]
    layer = engine.layer_path(engine.store.get_image(done.result_image_uuid).layers[-1])
    assert os.lstat(f"{layer}/by-exec").st_uid == 0 and os.lstat(f"{layer}/by-exec-1000").st_uid == 1000


async def test_keepers_forked_by_the_engine_itself_get_sandbox_users_too(keeper_engine: tuple[Engine, str]) -> None:
    """Without the factory (it died), the engine forks Python keepers itself: they join the same namespaces."""
    engine, image = keeper_engine
    factory = engine.keepers._factory
    assert factory is not None
    factory.kill()
    factory.wait()
    limit = time.monotonic() + 10
    while engine.keepers._sock is not None and time.monotonic() < limit:  # until the engine reads its EOF
        await asyncio.sleep(0.01)
    assert engine.keepers._sock is None
    for keeper, slot in engine.keepers._idle:  # its keepers died with it (PDEATHSIG)
        engine.keepers._discard(keeper, slot)
    engine.keepers._idle.clear()
    # offline: a keeper the engine forks has no pasta network (engine.py refuses it networking)
    op = await sh(engine, image, "cat /proc/self/uid_map; echo x > /made; chown 1000 /made",
                  networking={"enabled": False})
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(op).split() == ["0", str(_base(engine)), "65536"]
    layer = engine.layer_path(engine.store.get_image(op.result_image_uuid).layers[-1])  # type: ignore[arg-type]
    assert os.lstat(f"{layer}/made").st_uid == 1000
