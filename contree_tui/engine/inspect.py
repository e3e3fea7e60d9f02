"""Reading an image without running it: list a directory, read a file, archive a path as tar.

Each call forks a helper that mounts the image read-only in a private mount namespace and chroots into it
before touching a path, so every symlink — absolute, relative, `../../..` — resolves inside the image and
never reaches a host file. Owner names come from the image's own /etc/passwd and /etc/group, parsed as
text: NSS would load the image's libraries into this process.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from contree_tui.engine.grep import GrepQuery, search
from contree_tui.engine.models import EngineError, NotFound
from contree_tui.engine.sandbox import syscalls as sc


class Unprocessable(EngineError):
    status = 422


def _names(path: str) -> dict[int, str]:
    names: dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(":")
                if len(parts) >= 3 and parts[2].isdigit():
                    names.setdefault(int(parts[2]), parts[0])
    except OSError:
        pass
    return names


def file_item(path: str, name: str, users: dict[int, str], groups: dict[int, str]) -> dict[str, Any]:
    st = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
    return {
        "size": st.st_size, "path": name, "owner": users.get(st.st_uid, str(st.st_uid)),
        "group": groups.get(st.st_gid, str(st.st_gid)), "uid": st.st_uid, "gid": st.st_gid, "mode": st.st_mode,
        "mtime": int(st.st_mtime), "nlink": st.st_nlink, "is_dir": stat.S_ISDIR(st.st_mode),
        "is_regular": stat.S_ISREG(st.st_mode), "is_symlink": stat.S_ISLNK(st.st_mode),
        "is_socket": stat.S_ISSOCK(st.st_mode), "is_fifo": stat.S_ISFIFO(st.st_mode), "symlink_to": link,
    }


def _list(path: str, out: IO[bytes]) -> None:
    if not os.path.exists(path):
        raise NotFound(f"{path}: no such file or directory")
    if not os.path.isdir(path):
        raise Unprocessable(f"{path}: not a directory")
    users, groups = _names("/etc/passwd"), _names("/etc/group")
    items = [file_item(os.path.join(path, n), n, users, groups) for n in sorted(os.listdir(path))]
    _header(out, {})
    out.write(json.dumps({"path": path, "files": items}).encode())


def _read(path: str, out: IO[bytes]) -> None:
    if not os.path.exists(path):  # follows symlinks, inside the chroot
        raise NotFound(f"{path}: no such file")
    if not os.path.isfile(path):
        raise Unprocessable(f"{path}: not a regular file")
    with open(path, "rb") as fh:
        _header(out, {"size": os.fstat(fh.fileno()).st_size})
        shutil.copyfileobj(fh, out, 1 << 20)


def _archive(path: str, out: IO[bytes]) -> None:
    if not os.path.lexists(path):
        raise NotFound(f"{path}: no such file or directory")
    st = os.lstat(path)
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise Unprocessable(f"{path}: not a regular file or directory")
    _header(out, {})
    arcname = os.path.basename(path.rstrip("/")) or "."
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        archive.add(path, arcname=arcname, recursive=True)


def _grep(path: str, out: IO[bytes], query: GrepQuery) -> None:
    result = search(query)  # raises NotFound for a missing root before any output
    _header(out, {})
    out.write(json.dumps(result).encode())


OPERATIONS: dict[str, Callable[[str, IO[bytes]], None]] = {"list": _list, "read": _read, "archive": _archive}
# Operations that take a parameter object besides the path (its first root).
QUERY_OPERATIONS: dict[str, Callable[[str, IO[bytes], Any], None]] = {"grep": _grep}


def _header(out: IO[bytes], header: dict[str, Any]) -> None:
    out.write((json.dumps({"ok": True, **header}) + "\n").encode())
    out.flush()


def run_in_image(lowers: list[str], scratch_root: Path, operation: str,
                 path: str, query: Any = None) -> tuple[dict[str, Any], HelperStream]:
    """Fork the confined helper; return its header and a stream of the payload (read it to EOF, close it).

    For `list` the payload is the DirectoryList JSON; for `read` the file's bytes; for `archive` a PAX tar;
    for `grep` (with a GrepQuery as `query`) the GrepResult JSON.
    Errors come back as the EngineError the helper raised (404 missing, 422 wrong kind).
    """
    if not path.startswith("/") or "\0" in path:
        raise EngineError(f"path: {path!r} is not an absolute path")
    mountpoint = scratch_root / f"inspect-{uuid.uuid4().hex}"
    mountpoint.mkdir()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - forked child, reports through the pipe
        code = 0
        try:
            os.close(read_fd)
            out = os.fdopen(write_fd, "wb", buffering=1 << 16)
            try:
                sc.prctl(sc.PR_SET_PDEATHSIG, 9)
                sc.unshare(sc.CLONE_NEWNS)
                sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
                sc.overlay_mount(lowers, None, None, str(mountpoint),
                                 attrs=sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOSUID)
                os.chroot(str(mountpoint))
                os.chdir("/")
                if operation in QUERY_OPERATIONS:
                    QUERY_OPERATIONS[operation](os.path.normpath(path), out, query)
                else:
                    OPERATIONS[operation](os.path.normpath(path), out)
            except EngineError as exc:
                out.write((json.dumps({"ok": False, "error": str(exc), "status": exc.status}) + "\n").encode())
            except BrokenPipeError:
                code = 1
            except Exception as exc:  # noqa: BLE001
                out.write((json.dumps({"ok": False, "error": f"{path}: {exc}", "status": 500}) + "\n").encode())
            out.flush()
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    os.close(write_fd)
    stream = HelperStream(read_fd, pid, mountpoint)
    line = stream.readline()
    header = json.loads(line) if line else {"ok": False, "error": "inspect helper failed", "status": 500}
    if not header.get("ok"):
        stream.close()
        status = header.get("status", 500)
        cls = NotFound if status == 404 else Unprocessable if status == 422 else EngineError
        raise cls(header.get("error", "inspect failed"), status=status)
    return header, stream


class HelperStream:
    """The helper's pipe; closing it reaps the helper and removes its mountpoint."""

    def __init__(self, fd: int, pid: int, mountpoint: Path) -> None:
        self._file = os.fdopen(fd, "rb")
        self._pid = pid
        self._mountpoint = mountpoint

    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)

    def readline(self, limit: int = -1) -> bytes:
        return self._file.readline(limit)

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        try:
            os.kill(self._pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(self._pid, 0)
        try:
            self._mountpoint.rmdir()
        except OSError:
            pass

    def __enter__(self) -> HelperStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
