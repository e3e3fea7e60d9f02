"""Both sandbox keepers: keeper.c (built with the machine's compiler, the default) and the forked Python
keeper (no compiler, or CONTREE_TUI_NATIVE_KEEPER=0). Each behaviour below runs under both, so the
fallback cannot rot while the native keeper carries every other test."""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import shutil
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import EngineError, OperationStatus
from contree_tui.engine.sandbox import native
from contree_tui.engine.sandbox.launch import KEPT_CAPABILITIES, seccomp_program
from tests.engine.helpers import sh, stdout

HAVE_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None


async def test_pid_1_is_the_keeper_the_engine_chose(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    op = await engine.spawn({"image": image, "command": "sleep 30", "shell": True, "disposable": True})
    for _ in range(200):
        run = engine.instance_run(op.uuid)
        if run is not None and run.command_pid:
            break
        await asyncio.sleep(0.02)
    assert run is not None and run.sandbox_pid
    exe = os.readlink(f"/proc/{run.sandbox_pid}/exe")
    if engine.keepers.native:
        assert exe == engine.keepers.native
    else:
        assert "python" in Path(exe).name
    assert Path(f"/proc/{run.sandbox_pid}/comm").read_text().strip() == "ct-sandbox"
    await engine.cancel(op.uuid)


async def test_sandbox_shape(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    script = ("echo pid=$$; hostname; cat /proc/1/comm; grep CapBnd /proc/self/status; ulimit -n; ls /dev;"
              " cat /proc/kcore | wc -c; echo x > /proc/sys/kernel/hostname 2>/dev/null || echo ro; pwd; id -u; id -g")
    op = await sh(engine, image, script, hostname="box", cwd="/made/here", uid=1234, gid=99, disposable=True)
    assert op.status is OperationStatus.SUCCESS, op.error
    lines = stdout(op).split("\n")
    bounding = sum(1 << cap for cap in KEPT_CAPABILITIES)
    assert lines[:4] == ["pid=2", "box", "ct-sandbox", f"CapBnd:\t{bounding:016x}"]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # a limit is only ever lowered
    assert int(lines[4]) == min(engine.config.limits.open_files, hard if hard >= 0 else 1 << 62)
    assert lines[5:19] == ["fd", "full", "null", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty",
                           "urandom", "zero", "0", "ro"]
    assert lines[19:22] == ["/made/here", "1234", "99"]


async def test_exit_codes_signals_and_rusage(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    exited = await sh(engine, image, "exit 3", disposable=True)
    killed = await sh(engine, image, "kill -9 $$", disposable=True)
    for op, code, signal in ((exited, 3, -1), (killed, -1, 9)):
        assert op.result is not None
        assert (op.result["state"]["exit_code"], op.result["state"]["signal"]) == (code, signal), op.result
        assert op.result["resources"]["max_rss"] > 0 and op.result["resources"]["page_faults"] > 0


async def test_a_command_that_cannot_start_is_named(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    op = await engine.run({"image": image, "command": "/no/such/tool", "shell": False, "disposable": True})
    assert op.status is OperationStatus.FAILED
    assert "cannot start the command: /no/such/tool: No such file or directory" in (op.error or "")
    assert not [e for e in engine.store.events(op.uuid) if e.type == "spawn"]


async def test_a_file_that_is_not_an_executable_fails_alike(keeper_engine: tuple[Engine, str]) -> None:
    """No /bin/sh retry of a script without a shebang (execvp's habit; posix_spawnp and Docker don't)."""
    engine, image = keeper_engine
    made = await sh(engine, image, "printf 'echo hi\\n' > /bin/noshebang && chmod +x /bin/noshebang")
    op = await engine.run({"image": made.result_image_uuid, "command": "noshebang", "disposable": True})
    assert op.status is OperationStatus.FAILED
    assert "noshebang: Exec format error" in (op.error or "")


async def test_thousands_of_arguments_and_files_all_arrive(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    blob = engine.add_file(b"x")
    files = {f"/many/f{i}": {"uuid": blob.uuid, "mode": "0644"} for i in range(4500)}
    args = ["-c", 'echo $#; ls /many | wc -l', "sh", *(f"a{i}" for i in range(5000))]
    op = await engine.run({"image": image, "command": "/bin/sh", "args": args, "files": files, "disposable": True})
    assert stdout(op).split() == ["5000", "4500"]


async def test_networking_off_has_loopback_up(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    op = await sh(engine, image, "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; ifconfig lo | grep -c UP",
                  networking={"enabled": False}, disposable=True)
    assert stdout(op).split() == ["lo", "1"]


async def test_reinjecting_a_same_size_file_replaces_its_content(keeper_engine: tuple[Engine, str]) -> None:
    """Same size, mode and owner, other bytes: the content check must not leave the blob half-read."""
    engine, image = keeper_engine
    content = b"A" * 70_000 + b"B" * 30_000
    first = engine.add_file(b"A" * 100_000)
    second = engine.add_file(content)
    op = await sh(engine, image, "true", files={"/data/f": {"uuid": first.uuid, "mode": "0644"}})
    assert op.status is OperationStatus.SUCCESS, op.error
    again = await sh(engine, op.result_image_uuid, "md5sum < /data/f; wc -c < /data/f",
                     files={"/data/f": {"uuid": second.uuid, "mode": "0644"}}, disposable=True)
    assert stdout(again).split() == [hashlib.md5(content).hexdigest(), "-", "100000"]


async def test_a_directory_in_the_way_of_a_file_is_a_setup_error(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    f = engine.add_file(b"x")
    op = await sh(engine, image, "true", files={"/etc": {"uuid": f.uuid, "mode": "0644"}}, disposable=True)
    assert op.status is OperationStatus.FAILED
    assert "cannot place a file at /etc: it is a directory" in (op.error or "")


@pytest.mark.parametrize("field", [{"command": "echo a\0b"}, {"args": ["a\0b"]}, {"env": {"A": "b\0c"}},
                                   {"env": {"A=B": "c"}}, {"uid": 1 << 32}, {"hostname": "h" * 65}])
async def test_values_no_process_can_take_are_refused_by_name(keeper_engine: tuple[Engine, str], field: dict) -> None:
    engine, image = keeper_engine
    body = {"image": image, "command": "true", **field}
    with pytest.raises(EngineError) as refused:
        await engine.spawn(body)
    assert refused.value.status == 400
    assert next(iter(field)) in str(refused.value)


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_the_keeper_is_built_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV_SWITCH, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = native.keeper_binary(seccomp_program())
    assert built is not None and Path(built).parent == tmp_path / "contree-tui"
    assert Path(built).stat().st_mode & 0o777 == 0o700
    first = Path(built).stat().st_mtime_ns
    monkeypatch.setenv("CC", "/bin/false")  # a rebuild would now fail: the cached binary must be used
    assert native.keeper_binary(seccomp_program()) == built
    assert Path(built).stat().st_mtime_ns == first
    assert [p.name for p in (tmp_path / "contree-tui").iterdir()] == [Path(built).name]  # no partial left


def test_without_a_compiler_keepers_are_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv(native.ENV_SWITCH, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", "/bin/false")
    assert native.keeper_binary(seccomp_program()) is None
    assert "did not build" in caplog.text
    assert not [p for p in (tmp_path / "contree-tui").iterdir()], "a failed build leaves nothing behind"


def test_a_cache_others_can_write_to_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """root runs what is there: a directory others can write to could hand it any program."""
    monkeypatch.delenv(native.ENV_SWITCH, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "contree-tui"
    cache.mkdir()
    cache.chmod(0o777)
    assert native.keeper_binary(seccomp_program()) is None
    assert not list(cache.iterdir())
