"""A pool of pre-forked keepers (see launch.Keeper), each already in its own cgroup slot.

Keepers come from the keeper factory (factory.py), a separate small process, so forking costs the engine's
event loop nothing. If the factory cannot start or dies, keepers are forked by the engine itself: slower,
never broken.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from contree_tui.engine.models import EngineError
from contree_tui.engine.sandbox.launch import Keeper, seccomp_program
from contree_tui.engine.sandbox.limits import CgroupPool, Limits
from contree_tui.engine.sandbox.native import keeper_binary
from contree_tui.engine.sandbox.seccomp import SeccompUnavailable
from contree_tui.engine.sandbox.userns import ENV_NAME, SandboxUsers

# Enough idle keepers for a burst of parallel runs on two cores; each costs one sleeping process.
DEFAULT_IDLE_KEEPERS = 4
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


class KeeperPool:
    def __init__(self, cgroups: CgroupPool, limits: Limits, size: int = DEFAULT_IDLE_KEEPERS) -> None:
        self.cgroups = cgroups
        self.limits = limits
        self.size = size
        self._idle: list[tuple[Keeper, str | None]] = []
        self._pending: dict[int, tuple[str | None, asyncio.Future[tuple[Keeper, str | None]] | None]] = {}
        self._next_id = 0
        self._factory: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._closed = False
        self.native: str | None = None  # the built keeper.c the factory starts, if any
        self.users: SandboxUsers | None = None  # the sandboxes' user namespace (userns.py), set by start

    # -- factory --------------------------------------------------------------------------------------
    def start(self, users: SandboxUsers | None = None) -> None:
        """Start the factory; refill as replies come. Failure to start it only means slower forks; without
        libseccomp the engine does not start (EngineError 503): no sandbox runs unfiltered."""
        self.users = users
        try:
            program = seccomp_program()  # compiled before any fork: the fallback keepers inherit it
        except SeccompUnavailable as exc:
            raise EngineError(str(exc), status=503) from None
        self.native = keeper_binary(program)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")])}
        if users:
            env[ENV_NAME] = users.to_env()
        try:
            self._factory = subprocess.Popen(
                # -S: no site (its .pth hooks and site-packages): every page of this interpreter is copied
                # into every sandbox and torn down with it, and the launcher needs only the stdlib.
                [sys.executable, "-S", "-m", "contree_tui.engine.sandbox.factory", str(theirs.fileno()),
                 *([self.native] if self.native else [])],
                pass_fds=[theirs.fileno(), *(users.fds if users else ())], stdin=subprocess.DEVNULL, env=env)
        except OSError:
            ours.close()
            return
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_reply)
        self.refill()

    def _factory_gone(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for slot, future in self._pending.values():
            if future is not None and not future.done():
                future.set_result(self._fork_here(slot))
            elif slot is not None:
                self.cgroups.release(slot)
        self._pending.clear()

    def _on_reply(self) -> None:
        assert self._sock is not None
        try:
            message, fds, _, _ = socket.recv_fds(self._sock, 1 << 16, 2)
        except BlockingIOError:
            return
        except OSError:
            message, fds = b"", []
        if not message:
            self._factory_gone()
            return
        reply = json.loads(message)
        slot, future = self._pending.pop(reply["id"], (None, None))
        if "error" in reply or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            keeper_and_slot = self._fork_here(slot)
        else:
            keeper = Keeper(reply["pid"], socket.socket(fileno=fds[0]), pidfd=fds[1], native=reply.get("native", False),
                            networked=reply.get("net", False))
            keeper_and_slot = (keeper, slot)
        if future is not None and not future.done():
            future.set_result(keeper_and_slot)
        elif self._closed:
            self._discard(*keeper_and_slot)
        else:
            self._idle.append(keeper_and_slot)

    def _request(self, limits: Limits, future: asyncio.Future[tuple[Keeper, str | None]] | None) -> None:
        slot, procs = self.cgroups.acquire(limits) if self.cgroups.enabled else (None, [])
        if self._sock is None:
            result = Keeper.fork(procs, self.users), slot
            if future is not None:
                future.set_result(result)
            else:
                self._idle.append(result)
            return
        self._next_id += 1
        self._pending[self._next_id] = (slot, future)
        try:
            self._sock.send(json.dumps({"id": self._next_id, "cgroup_procs": procs}).encode())
        except OSError:
            self._factory_gone()

    def _fork_here(self, slot: str | None) -> tuple[Keeper, str | None]:
        procs = self.cgroups.procs_files(slot) if slot is not None else []
        return Keeper.fork(procs, self.users), slot

    # -- pool -----------------------------------------------------------------------------------------
    async def take(self, limits: Limits) -> tuple[Keeper, str | None]:
        """An idle keeper whose slot carries `limits` (asked of the factory now if none is idle)."""
        if self._idle:
            keeper, slot = self._idle.pop()
        else:
            future: asyncio.Future[tuple[Keeper, str | None]] = asyncio.get_running_loop().create_future()
            self._request(limits, future)
            keeper, slot = await future
        if slot is not None:
            self.cgroups.ensure_limits(slot, limits)
        return keeper, slot

    def refill(self) -> None:
        waiting = sum(1 for _, future in self._pending.values() if future is None)
        for _ in range(self.size - len(self._idle) - waiting):
            if self._closed:
                return
            self._request(self.limits, None)

    def _discard(self, keeper: Keeper, slot: str | None) -> None:
        keeper.discard()
        if slot is not None:
            self.cgroups.release(slot)

    def close(self) -> None:
        self._closed = True
        for keeper, slot in self._idle:
            self._discard(keeper, slot)
        self._idle.clear()
        if self._sock is not None:
            self._factory_gone()
        if self._factory is not None:
            self._factory.kill()
            self._factory.wait()
            self._factory = None
