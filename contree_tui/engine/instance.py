"""One instance operation from launch to completion: pipes → events, timeout and cancel, then the verdict.

Runs on the engine's event loop: the sandbox's stdout, stderr and status pipes are read with `add_reader`
and the keeper process is awaited through a pidfd, so hundreds of runs need no thread each.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contree_tui.engine.models import DEFAULT_PATH, Image, SpawnRequest
from contree_tui.engine.output import CappedStream, ProcessOutput
from contree_tui.engine.sandbox.launch import InjectedFile, Launched, LaunchSpec, launch
from contree_tui.engine.stdin_pipe import StdinPipe

if TYPE_CHECKING:
    from contree_tui.engine.event_log import EventSink
    from contree_tui.engine.exec_process import ExecRun

SECRET_SUFFIXES = ("TOKEN", "SECRET", "PASSWORD", "API_KEY", "CREDENTIALS", "AUTHORIZATION")


def masked_env(env: dict[str, str]) -> dict[str, str]:
    return {k: ("<MASKED>" if k.upper().endswith(SECRET_SUFFIXES) else v) for k, v in env.items()}


def command_line(request: SpawnRequest, image: Image) -> tuple[list[str], dict[str, str]]:
    """argv and environment as the spec defines them: a shell expression inherits the image env merged
    with the request's; an exec'd path gets only the request's env. PATH defaults either way."""
    if request.shell:
        env = {**image.env, **request.env}
        shell = env.get("SHELL") or "/bin/sh"
        argv = [shell, "-c", request.command]
    else:
        env = dict(request.env)
        argv = [request.command, *request.args]
    env.setdefault("PATH", DEFAULT_PATH)
    return argv, env


@dataclass
class Verdict:
    """What the run came to; the engine turns it into the operation's final state."""

    status: str  # SUCCESS | FAILED | CANCELLED
    error: str | None
    exit: dict[str, Any] | None
    timed_out: bool
    reason: str  # shutdown reason
    stdout: CappedStream
    stderr: CappedStream
    pid: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class InstanceRun:
    def __init__(self, events: EventSink, op_uuid: str, request: SpawnRequest, image: Image, run_dir: str) -> None:
        self.events = events
        self.op_uuid = op_uuid
        self.request = request
        self.image = image
        self.run_dir = run_dir
        self.output = ProcessOutput(lambda items: events.emit_many(op_uuid, items), 1, request.truncate_output_at)
        self.stdout, self.stderr = self.output.stdout, self.output.stderr
        self.stdin = StdinPipe(events, op_uuid, 1, request.truncate_output_at, keep_open=not request.stdin.close)
        self.cgroup_procs: list[str] = []
        self.children: dict[int, ExecRun] = {}  # processes started later in this instance, by spid
        self.finished = False
        self._last_spid = 1
        self.launched: Launched | None = None
        self.sandbox_pid: int | None = None
        self.command_pid = 0
        self._status_buffer = b""
        self._setup_error: str | None = None
        self._exec_error: str | None = None
        self._exit: dict[str, Any] | None = None
        self._kill_reason: str | None = None
        self._open_pipes = 0
        self._pipes_done = asyncio.get_running_loop().create_future()

    def next_spid(self) -> int:
        self._last_spid += 1
        return self._last_spid

    # -- control ---------------------------------------------------------------------------------
    def kill(self, reason: str) -> None:
        """SIGKILL the sandbox: pid 1 dies and the kernel takes everything in its pid namespace with it."""
        if self._kill_reason is None:
            self._kill_reason = reason
        if self.sandbox_pid:
            try:
                os.kill(self.sandbox_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.launched is not None:
            try:
                # Through the pidfd when there is one: the keeper is the factory's child, so its pid
                # could already belong to someone else.
                if self.launched.pidfd is not None:
                    signal.pidfd_send_signal(self.launched.pidfd, signal.SIGKILL)
                else:
                    os.kill(self.launched.keeper_pid, signal.SIGKILL)
            except (ProcessLookupError, OSError):
                pass

    def write_stdin(self, data: bytes, *, close: bool) -> None:
        """Write to the command's stdin (blocking: call it from a thread) and record `stdin` events."""
        self.stdin.write(data, close=close)

    def command_host_pid(self) -> int | None:
        """The command's pid as the host sees it, or None before its spawn or after its exit: the child of
        the sandbox's pid 1 whose innermost pid (NSpid) is the one the spawn message reported."""
        if not self.sandbox_pid or not self.command_pid or self._exit is not None:
            return None
        try:
            with open(f"/proc/{self.sandbox_pid}/task/{self.sandbox_pid}/children") as fh:
                children = [int(pid) for pid in fh.read().split()]
        except OSError:
            return None
        for pid in children:
            try:
                with open(f"/proc/{pid}/status") as fh:
                    nspid = next((line.split()[1:] for line in fh if line.startswith("NSpid:")), [])
            except OSError:
                continue
            if nspid and int(nspid[-1]) == self.command_pid:
                return pid
        return None

    def signal_command(self, signum: int) -> bool:
        """Send `signum` to the command's process group (it leads its own session); False if it is gone."""
        pid = self.command_host_pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            return False
        return True

    # -- run ----------------------------------------------------------------------------------------
    async def run(self, spec: LaunchSpec, start: Callable[[LaunchSpec], Launched] = launch) -> Verdict:
        """Start the sandbox with `start` (a pre-forked keeper's, by default a fresh fork) and see it end."""
        loop = asyncio.get_running_loop()
        self.launched = launched = start(spec)
        self.stdin.attach(launched.stdin_w)
        launched.stdin_w = None  # the pipe owns it now
        keeper_exit = loop.create_future()
        our_child = launched.pidfd is None
        pidfd = os.pidfd_open(launched.keeper_pid) if our_child else launched.pidfd
        loop.add_reader(pidfd, lambda: keeper_exit.done() or keeper_exit.set_result(None))
        for fd, handler in ((launched.stdout_r, self._on_stdout), (launched.stderr_r, self._on_stderr),
                            (launched.status_r, self._on_status)):
            self._open_pipes += 1
            loop.add_reader(fd, self._reader(fd, handler))
        timer = None
        if self.request.timeout:
            timer = loop.call_later(self.request.timeout, self.kill, "timeout")
        stdin_task = asyncio.ensure_future(self.stdin.feed_first(self.request.stdin.data))
        try:
            await self._pipes_done
            await keeper_exit
        finally:
            if timer:
                timer.cancel()
            loop.remove_reader(pidfd)
            os.close(pidfd)
            stdin_task.cancel()
            if our_child:
                os.waitpid(launched.keeper_pid, 0)
            self.stdin.close_unless_busy()  # the command is gone
        self.finished = True
        self.output.release()
        self.output.emit_truncations()
        return self._verdict()

    def _reader(self, fd: int, handler: Any) -> Any:
        loop = asyncio.get_running_loop()

        def on_readable() -> None:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                handler(data)
                return
            loop.remove_reader(fd)
            os.close(fd)
            self._open_pipes -= 1
            if self._open_pipes == 0 and not self._pipes_done.done():
                self._pipes_done.set_result(None)

        return on_readable

    def _on_stdout(self, data: bytes) -> None:
        self.output.feed(1, data)

    def _on_stderr(self, data: bytes) -> None:
        self.output.feed(2, data)

    def _on_status(self, data: bytes) -> None:
        self._status_buffer += data
        *lines, self._status_buffer = self._status_buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "sandbox_pid" in message:
                self.sandbox_pid = message["sandbox_pid"]
                if self._kill_reason:
                    self.kill(self._kill_reason)
            elif "spawned" in message:
                self.command_pid = message["spawned"]
                argv, env = command_line(self.request, self.image)
                self.events.emit(self.op_uuid, "spawn", 1, {
                    "pid": self.command_pid, "command": self.request.command, "args": list(argv[1:]),
                    "shell": self.request.shell, "cwd": self.request.cwd or "/", "uid": self.request.uid,
                    "gid": self.request.gid, "timeout": self.request.timeout,
                    "truncate_at": self.request.truncate_output_at, "env": masked_env(env)})
                self.output.release()
            elif "exec_error" in message:
                self._exec_error = message["exec_error"]
            elif "error" in message:
                self._setup_error = message["error"]
            elif "exit" in message:
                self._exit = message["exit"]

    def _verdict(self) -> Verdict:
        timed_out = self._kill_reason == "timeout"
        exit_info = self._exit
        if exit_info is None and self.command_pid:
            exit_info = {"code": -1, "signal": signal.SIGKILL, "core_dump": False, "resources": {}}
        if exit_info is not None:
            exit_info = {**exit_info, "pid": self.command_pid, "timed_out": timed_out}
        common = {"exit": exit_info, "timed_out": timed_out, "stdout": self.stdout, "stderr": self.stderr,
                  "pid": self.command_pid}
        if self._kill_reason == "cancelled":
            return Verdict("CANCELLED", "cancelled", reason="signal", **common)
        if self._setup_error:
            return Verdict("FAILED", self._setup_error, reason="spawn_failed", **common)
        if self._exec_error:
            return Verdict("FAILED", f"cannot start the command: {self._exec_error}", reason="spawn_failed",
                           **common)
        if timed_out and self.command_pid:
            # As the hosted Contree reports it (contree-mcp's errors guide): the operation completed, its
            # result says `state.timed_out` with the kill's exit; SDK users get that result, not a
            # FailedOperationError. A kept run commits what it wrote, as one killed through the API does.
            return Verdict("SUCCESS", None, reason="timeout", **common)
        if timed_out:
            return Verdict("FAILED", f"timed out after {self.request.timeout:g} s before the command started",
                           reason="timeout", **common)
        if self._kill_reason:
            return Verdict("FAILED", self._kill_reason, reason="signal", **common)
        if self._exit is None:
            return Verdict("FAILED", "the sandbox ended before the command reported its exit",
                           reason="signal", **common)
        return Verdict("SUCCESS", None, reason="job_complete", **common)



def injected_files(request: SpawnRequest, blob_names: dict[str, str]) -> list[InjectedFile]:
    return [InjectedFile(path=f.path, blob=blob_names[f.file_uuid], mode=f.mode, uid=f.uid, gid=f.gid)
            for f in request.files]


def instance_result(verdict: Verdict, elapsed: float) -> dict[str, Any]:
    """`InstanceResult` in full (contree-sdk's strict parser needs all 16 resource fields and 7 state ones)."""
    exit_info = verdict.exit or {}
    usage = exit_info.get("resources") or {}
    user = usage.get("user_time_us", 0) / 1e6
    system = usage.get("sys_time_us", 0) / 1e6
    return {
        "state": {
            "exit_code": exit_info.get("code", -1), "pid": verdict.pid, "signal": exit_info.get("signal", -1),
            "timed_out": verdict.timed_out, "core_dump": exit_info.get("core_dump", False),
            "stopped": False, "continued": False,
        },
        "stdout": verdict.stdout.result(),
        "stderr": verdict.stderr.result(),
        "resources": {
            "block_input": usage.get("block_input_ops", 0), "block_output": usage.get("block_output_ops", 0),
            "cost": 0.0, "elapsed_time": elapsed,
            "involuntary_switches": usage.get("involuntary_ctx_switches", 0),
            "max_rss": usage.get("max_rss_kb", 0), "monotonic_time": time.monotonic(),
            "page_faults": usage.get("minor_faults", 0), "page_faults_io": usage.get("major_faults", 0),
            "shared_memory": usage.get("shared_memory", 0), "signals": usage.get("signals_received", 0),
            "swaps": usage.get("swaps", 0), "system_cpu_time": system,
            "unshared_memory": usage.get("unshared_memory", 0), "user_cpu_time": user,
            "voluntary_switches": usage.get("voluntary_ctx_switches", 0),
        },
    }
