"""Starting a program as the root of a user namespace of its own, which holds no host privilege.

mmdebstrap runs maintainer scripts (postinst, ...) in the chroot it builds. Run by root, even in its
`--mode=unshare`, that would be host root in a chroot (mmdebstrap only adds a user namespace for non-root
callers, through newuidmap and /etc/subuid). Here it runs as uid 0 of a new user namespace whose ids
0..65535 are host ids BASE..BASE+65535, the sandboxes' ids (engine/sandbox/userns.py reads the same
`contree-tui` line of /etc/subuid, else 1,000,000,000): its capabilities hold only inside that namespace,
it owns nothing on the host, and files it creates belong to BASE+u. mmdebstrap, seeing euid 0, unshares its
own mount and pid namespaces inside that one (allowed there) and chroots.

The namespace is made by a small Python child (CHILD below): it unshares CLONE_NEWUSER and says so on a
pipe; the parent, holding CAP_SETUID/CAP_SETGID on the host, writes its uid_map and gid_map (a process may
not map a range for itself; util-linux `unshare --map-users` would need newuidmap, i.e. the uidmap package
and /etc/subuid set up); the child, told on a second pipe, becomes uid/gid 0 there and execs the program.
A child that fails says why on its stderr and closes the pipe: the parent never waits on it blindly.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from contree_tui.sandbox_ids import IdRange

HANDSHAKE_TIMEOUT = 10.0  # seconds for the child to start Python and unshare (~30 ms measured)

CHILD = r"""
import ctypes, os, sys
ready, go = int(sys.argv[1]), int(sys.argv[2])
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
    sys.stderr.write("contree-tui: cannot create a user namespace: " + os.strerror(ctypes.get_errno()) + "\n")
    os._exit(126)
os.write(ready, b"u")
os.close(ready)
if os.read(go, 1) != b"g":
    os._exit(126)
os.close(go)
os.setgroups([])
os.setresgid(0, 0, 0)
os.setresuid(0, 0, 0)
try:
    os.execvp(sys.argv[3], sys.argv[3:])
except OSError as exc:
    sys.stderr.write("contree-tui: cannot run " + sys.argv[3] + ": " + str(exc) + "\n")
    os._exit(127)
"""


def maps_host_ids() -> bool:
    """Host root, which may map any host ids for a child (what spawn_as_namespace_root needs). uid 0 of a
    user's own namespace (the rootless engine's, `unshare --map-root-user`) holds only its map's ids: a map
    to the sandbox range is refused there (EPERM). Read from /proc/self/uid_map as engine/privilege.py does
    (client/ may not import the engine)."""
    if os.geteuid() != 0:
        return False
    with open("/proc/self/uid_map") as fh:
        return fh.read().split() == ["0", "0", "4294967295"]


class UsernsError(Exception):
    """The namespace could not be made or mapped; the message says why."""


async def spawn_as_namespace_root(argv: Sequence[str], ids: IdRange, *, env: Mapping[str, str] | None = None,
                                  stdout: int | None = None, stderr: int | None = None,
                                  cwd: str | None = None) -> asyncio.subprocess.Process:
    """Start `argv` as uid 0 of a new user namespace mapped to `ids`; the caller must be host root."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", CHILD, str(ready_w), str(go_r), *argv,
            pass_fds=(ready_w, go_r), stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=stderr,
            env=dict(env) if env is not None else None, cwd=cwd)
    except BaseException:
        for fd in (ready_r, ready_w, go_r, go_w):
            os.close(fd)
        raise
    os.close(ready_w)
    os.close(go_r)
    try:
        try:
            said = await asyncio.wait_for(asyncio.to_thread(os.read, ready_r, 1), HANDSHAKE_TIMEOUT)
        except TimeoutError:
            raise UsernsError(f"the user namespace child did not start within {HANDSHAKE_TIMEOUT:g} s") from None
        if said != b"u":  # it exited, saying why on its stderr
            await proc.wait()
            reason = (await proc.stderr.read()).decode(errors="replace").strip() if proc.stderr else ""
            raise UsernsError(reason.removeprefix("contree-tui: ") or "could not create a user namespace")
        try:
            for name, base in (("uid_map", ids.uid_base), ("gid_map", ids.gid_base)):
                with open(f"/proc/{proc.pid}/{name}", "w") as fh:
                    fh.write(f"0 {base} {ids.count}\n")
        except OSError as exc:
            raise UsernsError(f"could not map the user namespace's ids to {ids.uid_base}..: {exc.strerror}") from None
        os.write(go_w, b"g")
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    finally:
        os.close(ready_r)
        os.close(go_w)
    return proc
