"""Where the engine's API socket lives (#14).

Clients always connect to `<state>/engine.sock` (contree_tui/paths.py; profiles hold that path too). As root
that is the socket itself. A rootless engine binds the real socket in the user's runtime dir,
`$XDG_RUNTIME_DIR/contree-tui/engine-<state id>.sock` (a tmpfs the login made for that user alone, 0700,
cleared at logout and reboot), and leaves `<state>/engine.sock` as a symlink to it: connect(2) follows it, so
no client changes. Without XDG_RUNTIME_DIR (`su` without a login shell), or one that is not this user's
private dir, the socket stays in the state dir, as root's does.

A socket path must fit sun_path: 108 bytes with the trailing NUL. The runtime path is ~45 bytes; a longer one
falls back to the state dir; a state dir whose socket path does not fit is refused with the reason (the
kernel's own answer, "AF_UNIX path too long", names neither the path nor the fix).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path

from contree_tui.engine.models import EngineError
from contree_tui.engine.privilege import running_rootless
from contree_tui.engine.state_dir import StateDir

SUN_PATH_MAX = 107  # sizeof(sun_path) = 108, one for the NUL
RUNTIME_SUBDIR = "contree-tui"


def _private_dir(path: Path, create: bool) -> bool:
    """`path` is a real directory (not a symlink) owned by this process's uid, with no access for others."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def runtime_socket_path(state: StateDir) -> Path | None:
    """The rootless engine's socket in $XDG_RUNTIME_DIR, or None to keep it in the state dir."""
    if not running_rootless():
        return None
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if not runtime or not os.path.isabs(runtime) or not _private_dir(Path(runtime), create=False):
        return None
    path = Path(runtime) / RUNTIME_SUBDIR / f"engine-{state.id}.sock"
    if len(os.fsencode(path)) > SUN_PATH_MAX or not _private_dir(path.parent, create=True):
        return None
    return path


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _bind(path: Path) -> socket.socket:
    """Bind with mode 0600 from the start (no window where others could connect) and listen."""
    size = len(os.fsencode(path))
    if size > SUN_PATH_MAX:
        raise EngineError(f"the engine's socket path {path} is {size} bytes, longer than the {SUN_PATH_MAX} a Unix "
                          "socket allows: use a shorter --state-dir (or CONTREE_TUI_ENGINE_DIR)", status=503)
    _remove(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(512)
    return sock


def bind_api_socket(state: StateDir) -> tuple[socket.socket, list[Path]]:
    """The listening socket, and the paths to remove when the engine stops. A socket or symlink left by an
    engine that crashed is replaced (the state dir's lock says no other engine serves it)."""
    real = runtime_socket_path(state)
    if real is None:
        return _bind(state.socket), [state.socket]
    _remove(state.socket)
    sock = _bind(real)
    link = state.socket.with_name(f".{state.socket.name}.{os.getpid()}")
    _remove(link)
    os.symlink(real, link)
    os.replace(link, state.socket)  # atomic: a client sees the old entry or the new link, never neither
    return sock, [state.socket, real]


def remove_api_socket(paths: list[Path]) -> None:
    for path in paths:
        _remove(path)
