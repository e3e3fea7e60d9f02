"""The product as a normal user, end to end through the real CLI (#14): the engine starts on demand in a user
namespace of its own, runs, branches, rolls back and forward, syncs a folder, hands files back, and its socket
is the user's alone. One engine (one state dir) for the module; crash recovery has its own."""

from __future__ import annotations

import os
import random
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rootless.cli_session import Session, folder_of
from tests.rootless.conftest import NormalUser

pytestmark = pytest.mark.usefixtures("debian_tun")  # runs have networking on, as the CLI's do

WHOAMI_THROUGH_CONTREE_CLIENT = """
import asyncio, sys, httpx
from contree_client.httpx import ContreeAsyncClient
async def main():
    http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=sys.argv[1]), timeout=30)
    client = ContreeAsyncClient("local", base_url="http://localhost", httpx_client=http)
    await client.whoami()
    print(sorted(image.tag for image in (await client.list_images()).images if image.tag))
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def session(normal_user: NormalUser) -> Iterator[Session]:
    yield Session(normal_user, normal_user.new_state_dir(), folder_of(normal_user, "project"))
    normal_user.stop_engines()


def _host_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_the_engine_starts_on_demand_as_the_user_and_runs_a_command(session: Session) -> None:
    assert session.cli("engine", "run", "echo", "hello from a sandbox") == "hello from a sandbox\n"
    pid = session.user.engine_pid(session.state)
    assert pid is not None
    assert _host_uid(pid) == session.user.uid  # the user's process on the host ...
    uid_map = Path(f"/proc/{pid}/uid_map").read_text().split()
    assert uid_map[:3] == ["0", str(session.user.uid), "1"]  # ... uid 0 of its own user namespace
    assert (session.state / "engine.mode").read_text() == f"rootless {session.user.uid}\n"


def test_the_socket_is_the_users_alone_in_its_runtime_dir_and_the_state_dir_links_to_it(session: Session) -> None:
    session.cli("engine", "run", "true")
    link = session.state / "engine.sock"
    assert link.is_symlink()
    real = Path(os.readlink(link))
    assert real.parent == session.user.runtime_dir / "contree-tui"
    st = real.lstat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == session.user.uid
    assert stat.S_IMODE(real.parent.stat().st_mode) == 0o700
    assert len(os.fsencode(real)) < 108
    # the official client connects through the state dir's path, as every profile names it
    done = session.user.run(str(session.user.python), "-c", WHOAMI_THROUGH_CONTREE_CLIENT, str(link))
    assert done.returncode == 0, done.stderr
    assert "busybox:latest" in done.stdout


@pytest.mark.parametrize("runtime", ["", "long"])
def test_without_a_usable_runtime_dir_the_socket_stays_in_the_state_dir(normal_user: NormalUser, runtime: str) -> None:
    """`su` without a login leaves no XDG_RUNTIME_DIR; one whose socket path would pass sun_path's 108 bytes
    cannot hold it either: the state dir does, as root's."""
    if runtime == "long":
        path = normal_user.home / ("r" * 100)
        path.mkdir(mode=0o700, exist_ok=True)
        os.chown(path, normal_user.uid, normal_user.gid)
        runtime = str(path)
    state = normal_user.new_state_dir()
    done = normal_user.cli("engine", "run", "--state-dir", str(state), "echo", "ok",
                           env={"XDG_RUNTIME_DIR": runtime})
    assert done.returncode == 0 and done.stdout == "ok\n", done
    sock = (state / "engine.sock").lstat()
    assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600


def test_a_run_chain_a_branch_rollback_and_forward(session: Session) -> None:
    first = session.json("run", "--", "echo one > /one.txt")
    second = session.json("run", "--", "cat /one.txt > /two.txt")
    assert first["status"] == second["status"] == "SUCCESS"  # type: ignore[index]
    assert second["source"] == first["result_image"]  # type: ignore[index]
    back = session.json("rollback")
    assert back["image"] == first["result_image"]  # type: ignore[index]
    ahead = session.json("forward")
    assert ahead["image"] == second["result_image"]  # type: ignore[index]
    session.json("rollback")
    branch = session.json("run", "--", "echo branch > /b.txt; test ! -e /two.txt")
    assert branch["status"] == "SUCCESS" and branch["source"] == first["result_image"]  # type: ignore[index]
    children = [row for row in session.json("images")  # type: ignore[union-attr]
                if row.get("parent") == first["result_image"]]  # type: ignore[index]
    assert len(children) == 2  # the chain's second step and the branch
    assert session.cli("download", "--image", second["result_image"], "/two.txt", "-") == "one\n"  # type: ignore[index]


def test_folder_sync_and_download_of_a_file_the_sandbox_wrote(session: Session) -> None:
    note = session.folder / "note.txt"
    note.write_text("synced as the user\n")
    os.chown(note, session.user.uid, session.user.gid)
    synced = session.json("sync")
    assert "note.txt" in synced["added"] or synced["files"] >= 1  # type: ignore[index]
    out = session.cli("run", "--", "cat /app/note.txt; id -u; cp /app/note.txt /copied.txt")
    assert out == "synced as the user\n0\n"
    assert session.cli("download", "/copied.txt", "-") == "synced as the user\n"
    dest = session.folder / "back.txt"
    session.cli("download", "/copied.txt", str(dest))
    assert dest.read_text() == "synced as the user\n"
    assert dest.stat().st_uid == session.user.uid  # written by the client, as the user


def _ops(session: Session) -> list[dict[str, object]]:
    return session.json("ops", "-a")  # type: ignore[return-value]


def _mounts_under(path: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            lines = (proc / "mountinfo").read_text().splitlines()
        except OSError:
            continue
        found += [line for line in lines if line.split()[4].startswith(str(path))]
    return found


def test_a_killed_engine_is_replaced_on_the_next_command_and_its_run_reported_failed(normal_user: NormalUser) -> None:
    crash = Session(normal_user, normal_user.new_state_dir(), folder_of(normal_user, "crash"))
    crash.cli("engine", "run", "true")
    old = normal_user.engine_pid(crash.state)
    assert old is not None
    # a duration of its own: "sleep 300" was also some other program's on a busy machine (CI: another session's
    # runs), and the check below looks for this run's process among all of the machine's
    sleep = f"sleep {random.randint(100_000, 999_999)}"
    running = normal_user.popen(str(normal_user.python), "-m", "contree_tui", "run", "--", sleep,
                                env={"CONTREE_TUI_ENGINE_DIR": str(crash.state)}, cwd=crash.folder)
    try:
        deadline = time.monotonic() + 60
        while not any(op["status"] == "EXECUTING" for op in _ops(crash)):
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
        os.kill(old, 9)
        running.wait(timeout=60)
        assert (crash.state / "engine.sock").is_symlink()  # left behind, pointing at a socket nobody serves
    finally:
        if running.poll() is None:
            running.kill()
            running.wait()
    assert crash.cli("engine", "run", "echo", "after the crash") == "after the crash\n"
    new = normal_user.engine_pid(crash.state)
    assert new is not None and new != old
    sleeper = next(op for op in _ops(crash) if op["command"] == sleep)
    assert sleeper["status"] == "FAILED", sleeper
    assert not _mounts_under(crash.state / "runs"), "no run's mounts outlive its engine"
    # the last run's own scratch is removed in the background, just after its answer (scratch_trash.py)
    deadline = time.monotonic() + 10
    while (left_dirs := list((crash.state / "runs").iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left_dirs == [], "no scratch dir outlives its run"
    left = [line for line in _command_lines() if sleep in line]
    assert not left, f"the sandbox died with its engine: {left}"


def _command_lines() -> list[str]:
    lines = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(path.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile
            pass
    return lines


def test_engine_stop_ends_the_relay_and_the_engine_and_removes_both_socket_paths(normal_user: NormalUser) -> None:
    """The pid file names the process that was started (the relay, outside the engine's pid namespace); `engine
    stop` signals it, the relay passes it on to the engine (pid 1 inside), and both end."""
    stopping = Session(normal_user, normal_user.new_state_dir(), folder_of(normal_user, "stop"))
    stopping.cli("engine", "run", "true")
    relay = normal_user.engine_pid(stopping.state)
    assert relay is not None
    engine = int(Path(f"/proc/{relay}/task/{relay}/children").read_text().split()[0])
    assert Path(f"/proc/{engine}/status").read_text().split("NSpid:")[1].split()[1] == "1"
    real = Path(os.readlink(stopping.state / "engine.sock"))
    assert stopping.cli("engine", "stop") == f"engine stopped (pid {relay})\n"
    deadline = time.monotonic() + 10
    while Path(f"/proc/{engine}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{engine}").exists(), "the engine ends with its relay"
    assert not (stopping.state / "engine.sock").is_symlink() and not real.exists()
