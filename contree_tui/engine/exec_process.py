"""Another process in a running instance (spid ≥ 2): its pipes become events with its spid, and its stdin
takes later writes when the request said `stdin.close: false`, as the main process's does.

It shares the instance's filesystem (its writes land in the same upper dir, so a non-disposable instance
commits them too), namespaces, cgroups and fate: it dies when the main process ends the instance.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import TYPE_CHECKING, Any

from contree_tui.engine.models import StdinSpec
from contree_tui.engine.output import ProcessOutput, encode_stream
from contree_tui.engine.sandbox.launch import Launched
from contree_tui.engine.stdin_pipe import StdinPipe

if TYPE_CHECKING:
    from contree_tui.engine.event_log import EventSink


class ExecRun:
    def __init__(self, events: EventSink, op_uuid: str, spid: int, launched: Launched, truncate_at: int,
                 spawn_data: dict[str, Any], stdin: StdinSpec) -> None:
        self.events = events
        self.op_uuid = op_uuid
        self.spid = spid
        self.launched = launched
        self.spawn_data = spawn_data
        self.host_pid: int | None = None
        self.exited = False
        self.output = ProcessOutput(lambda items: events.emit_many(op_uuid, items), spid, truncate_at)
        self.stdin = StdinPipe(events, op_uuid, spid, truncate_at, keep_open=not stdin.close)
        self.stdin.attach(launched.stdin_w)
        launched.stdin_w = None  # the pipe owns it now
        self._first_chunk = stdin.data
        self._status = b""
        self._exit: dict[str, Any] | None = None
        self._error: str | None = None

    def signal(self, signum: int) -> bool:
        if self.host_pid is None or self.exited:
            return False
        try:
            os.killpg(self.host_pid, signum)
        except ProcessLookupError:
            return False
        return True

    @property
    def starting(self) -> bool:
        """Created, its spawn not reported yet: a signal or a write has no process to reach so far."""
        return self.host_pid is None and not self.exited and self._exit is None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        launched = self.launched
        done = {fd: loop.create_future() for fd in (launched.stdout_r, launched.stderr_r, launched.status_r)}
        for fd, which in ((launched.stdout_r, 1), (launched.stderr_r, 2), (launched.status_r, 0)):
            loop.add_reader(fd, self._on_readable, fd, which, done[fd])
        feeding = asyncio.ensure_future(self.stdin.feed_first(self._first_chunk))
        try:
            await asyncio.gather(*done.values())
            await asyncio.to_thread(os.waitpid, launched.keeper_pid, 0)
        finally:
            feeding.cancel()
            self.exited = True
            self.stdin.close_unless_busy()  # the process is gone
        self.output.release()
        self.output.emit_truncations()
        exit_info = self._exit or {"code": -1, "signal": signal.SIGKILL, "core_dump": False, "resources": {}}
        if self._error:
            self.events.emit(self.op_uuid, "stderr", self.spid, encode_stream(f"{self._error}\n".encode()))
        self.events.emit(self.op_uuid, "exit", self.spid, {
            "pid": self.spawn_data.get("pid", 0), "code": exit_info.get("code", -1),
            "signal": exit_info.get("signal", -1), "core_dump": exit_info.get("core_dump", False),
            "timed_out": False, "duration_ms": 0, "resources": exit_info.get("resources", {})})

    def _on_readable(self, fd: int, which: int, done: asyncio.Future[None]) -> None:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            done.set_result(None)
            return
        if which == 0:
            self._on_status(data)
        else:
            self.output.feed(which, data)

    def _on_status(self, data: bytes) -> None:
        self._status += data
        *lines, self._status = self._status.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "spawned" in message:
                self.host_pid = message.get("host_pid")
                self.spawn_data["pid"] = message["spawned"]
                self.events.emit(self.op_uuid, "spawn", self.spid, self.spawn_data)
                self.output.release()
            elif "exit" in message:
                self._exit = message["exit"]
            elif "exec_error" in message or "error" in message:
                self._error = message.get("exec_error") or message.get("error")
                if self._exit is None:
                    self._exit = {"code": 127, "signal": -1, "core_dump": False, "resources": {}}

