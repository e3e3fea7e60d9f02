"""The headless CLI following a run when its engine goes away: it says so once on stderr, brings the embedded
engine back, resumes the log where it stopped (no line lost or doubled) and exits non-zero with the reason;
never a silent hang. Each test has an engine of its own (killing the session's would break other tests)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.client import operations
from contree_tui.client.connection import Connection, ServerUnreachable, connect, resolve_target
from contree_tui.client.embedded import engine_pid
from contree_tui.client.operations import EventCursor, follow_events, stream_bytes
from contree_tui.client.reconnect import Backoff, LinkState
from tests.client.conftest import TcpEngine, served_engine, stop_engine
from tests.client.test_cli import Cli

COUNT = "for i in $(seq 1 50); do echo $i; sleep 0.1; done"
BOUND = 30.0  # seconds the CLI may take to notice, restart the engine and report


@pytest.fixture
def own_engine() -> Iterator[Path]:
    yield from served_engine("ctf-")


class Lines:
    """A subprocess's stdout read on a thread, so the test can wait for the k-th line with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.lines) >= count, timeout), self.lines

    def finish(self, timeout: float = BOUND) -> tuple[list[str], str]:
        """All stdout lines and stderr, once the process exits; a hang past `timeout` fails the test."""
        started = time.monotonic()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the CLI still ran {timeout:g} s after the engine went away (it hangs)")
        self.thread.join(timeout=10)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        assert time.monotonic() - started < timeout
        return self.lines, err


def assert_counted(lines: list[str]) -> None:
    numbers = [int(line) for line in lines]
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # in order, none lost, none twice


def test_run_reports_a_killed_engine_and_resumes_the_log(own_engine: Path, tmp_path: Path) -> None:
    cli = Cli(own_engine, tmp_path / "project")
    proc = cli.popen("run", "--", COUNT)
    out = Lines(proc)
    out.wait_for(5)
    pid = engine_pid(own_engine)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    lines, err = out.finish()
    assert "Traceback" not in err, err
    assert proc.returncode not in (0, None), err
    assert err.count("unreachable, reconnecting") == 1, err  # one line for the outage, not one per retry
    assert "engine restarted" in err.strip().splitlines()[-1], err
    assert len(lines) >= 5
    assert_counted(lines)
    assert engine_pid(own_engine) not in (None, pid)  # the CLI brought the engine back


def test_logs_follow_reports_an_engine_stop(own_engine: Path, tmp_path: Path) -> None:
    cli = Cli(own_engine, tmp_path / "project")
    run = cli.popen("run", "--", COUNT)
    run_out = Lines(run)
    run_out.wait_for(3)
    ops = cli.json("ops")
    assert isinstance(ops, list)
    running = [op["uuid"] for op in ops if op["status"] == "EXECUTING"]
    assert len(running) == 1, ops
    follow = cli.popen("logs", "-f", running[0])
    out = Lines(follow)
    out.wait_for(run_out.lines.__len__() + 1)
    stop_engine(own_engine)
    lines, err = out.finish()
    assert "Traceback" not in err, err
    assert follow.returncode not in (0, None), err
    last = err.strip().splitlines()[-1]
    assert last.startswith("contree-tui: operation ") and "FAILED" in last and "engine" in last, err
    assert_counted(lines)
    run_lines, run_err = run_out.finish()
    assert run.returncode not in (0, None) and "Traceback" not in run_err, run_err
    assert_counted(run_lines)


async def test_a_hosted_server_that_stays_away_ends_the_follow(tcp_engine: TcpEngine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "RECONNECT_BUDGET", 3.0)
    monkeypatch.setattr(operations, "LINK_CHECK_HOSTED", 0.5)
    monkeypatch.setenv("CONTREE_TOKEN", tcp_engine.token)
    monkeypatch.setenv("CONTREE_URL", tcp_engine.url)
    await tcp_engine.start()
    conn: Connection = await connect(resolve_target(), backoff=Backoff(delays=(0.2, 0.5), jitter=0))
    async with conn:
        spawned = await conn.client.spawn_instance("echo one; sleep 20", "tag:busybox:latest", shell=True)
        cursor = EventCursor()
        seen: list[bytes] = []
        started = 0.0

        async def follow() -> None:
            nonlocal started
            async for event in follow_events(conn, str(spawned.uuid), cursor=cursor):
                data = stream_bytes(event)
                if data:
                    seen.append(data)
                    started = time.monotonic()
                    await asyncio.to_thread(tcp_engine.process.kill)  # type: ignore[union-attr]

        with pytest.raises(ServerUnreachable) as caught:
            await asyncio.wait_for(follow(), BOUND)
        gave_up_after = time.monotonic() - started
        assert seen == [b"one\n"]
        assert 3.0 <= gave_up_after < 15, gave_up_after
        message = str(caught.value)
        assert tcp_engine.url in message and "gave up after 3 s" in message, message
        assert conn.status.value.state is LinkState.FAILED
        assert LinkState.RECONNECTING in [s.state for s in conn.status.history]
    await tcp_engine.start()  # its recovery ends the orphaned run and clears its sandbox
