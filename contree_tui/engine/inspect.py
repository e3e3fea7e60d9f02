"""Reading an image without running it: list a directory, read a file, archive a path as tar, grep.

Each call runs in a confined helper (sandbox/helper.py): the image mounted read-only and noexec as the root
of its own mount namespace, an unprivileged uid, no imports. So every path and symlink — absolute,
relative, `../../..` — resolves inside the image and never reaches a host file, and nothing the image holds
is loaded as code. The functions below run inside that helper and treat every file as hostile:

- no libc lookup that could load from the image: owner names come from the image's /etc/passwd and
  /etc/group parsed as text, tar headers are built here with numeric ids and those names (tarfile's own
  `gettarinfo` asks pwd/grp, that is NSS, which dlopens whatever the image's nsswitch.conf names);
- every file is opened O_NONBLOCK|O_NOCTTY and fstat'ed before a byte is read, and anything but a regular
  file is refused or skipped: opening a FIFO for reading blocks until a writer comes, which is never.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
from datetime import UTC, datetime
from typing import Any

from contree_tui.engine.grep import GrepQuery, search
from contree_tui.engine.models import EngineError, NotFound, Unprocessable
from contree_tui.engine.sandbox.helper import CHUNK, HelperLimits, HelperOutput, HelperProcess, HelperSet, Work

NAMES_FILE_BYTES = 16 << 20  # a larger /etc/passwd or /etc/group is ignored (ids are shown instead)
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
OPERATIONS = ("list", "list-text", "read", "archive", "grep")


def open_regular(path: str, *, follow: bool = True) -> tuple[int, os.stat_result]:
    """An fd on `path` if it is a regular file (Unprocessable otherwise), opened without blocking."""
    try:
        fd = os.open(path, OPEN_FLAGS | (0 if follow else os.O_NOFOLLOW))
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    except OSError as exc:
        raise Unprocessable(f"{path}: not a regular file ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Unprocessable(f"{path}: not a regular file")
    return fd, st


def _names(path: str) -> dict[int, str]:
    """id -> name from a passwd/group file, parsed as text (never through NSS)."""
    names: dict[int, str] = {}
    try:
        fd, st = open_regular(path)
    except EngineError:
        return names
    try:
        if st.st_size > NAMES_FILE_BYTES:
            return names
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            text = fh.read(NAMES_FILE_BYTES).decode("utf-8", "replace")
    except OSError:
        return names
    finally:
        if fd >= 0:
            os.close(fd)
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            names.setdefault(int(parts[2]), parts[0])
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


def human_size(size: float) -> str:
    if size == 0:
        return "0"
    for unit in ("", " KB", " MB", " GB", " TB"):
        if size < 1024 or unit == " TB":
            return f"{size:.2f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


def listing_text(listing: dict[str, Any]) -> str:
    """The ls-like form (`total 19.42 KB` / `drwxr-xr-x 1 0 0   858.00 May 30 12:13 bin`). Dates are
    formatted by hand: strftime may consult the time zone and locale files, which here are the image's."""
    files = listing["files"]
    lines = [f"total {human_size(sum(f['size'] for f in files))}"]
    for item in files:
        when = datetime.fromtimestamp(item["mtime"], UTC)
        stamp = f"{MONTHS[when.month - 1]} {when.day:02d} {when.hour:02d}:{when.minute:02d}"
        name = item["path"] + (f" -> {item['symlink_to']}" if item["is_symlink"] else "")
        lines.append(f"{stat.filemode(item['mode'])} {item['nlink']} {item['uid']} {item['gid']} "
                     f"{human_size(item['size']):>8} {stamp} {name}")
    return "\n".join(lines) + "\n"


def _send(out: HelperOutput, body: bytes) -> None:
    out.header(size=len(body))
    for start in range(0, len(body), CHUNK):
        out.write(body[start:start + CHUNK])


def _list(path: str, out: HelperOutput, *, text: bool) -> None:
    if not os.path.exists(path):
        raise NotFound(f"{path}: no such file or directory")
    if not os.path.isdir(path):
        raise Unprocessable(f"{path}: not a directory")
    users, groups = _names("/etc/passwd"), _names("/etc/group")
    listing = {"path": path, "files": [file_item(os.path.join(path, n), n, users, groups)
                                       for n in sorted(os.listdir(path))]}
    _send(out, listing_text(listing).encode("utf-8", "surrogateescape") if text else
          json.dumps(listing).encode())


def _read(path: str, out: HelperOutput) -> None:
    fd, st = open_regular(path)  # follows symlinks, inside the image
    with os.fdopen(fd, "rb") as fh:
        out.header(size=st.st_size)
        left = st.st_size
        while left > 0 and (data := fh.read(min(CHUNK, left))):
            out.write(data)
            left -= len(data)
        if left:
            raise EngineError(f"{path}: shorter than its size")


class _TarWriter:
    """tar members built from lstat: numeric ids, names from the image's own files, FIFOs and devices as
    header-only members (never opened), hard links as links to the first name seen."""

    def __init__(self, out: HelperOutput) -> None:
        # closed by close(); a stream ("w|") never seeks, the helper's output is a pipe
        self.archive = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]  # noqa: SIM115
        self.users, self.groups = _names("/etc/passwd"), _names("/etc/group")
        self.links: dict[tuple[int, int], str] = {}

    def add_tree(self, path: str, arcname: str) -> None:
        stack = [(path, arcname)]  # explicit, not recursive: an image may nest directories thousands deep
        while stack:
            source, name = stack.pop()
            st = os.lstat(source)
            self.add(source, name, st)
            if stat.S_ISDIR(st.st_mode):
                stack.extend((os.path.join(source, child), f"{name}/{child}")
                             for child in sorted(os.listdir(source), reverse=True))

    def add(self, path: str, name: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        info.uname, info.gname = self.users.get(st.st_uid, ""), self.groups.get(st.st_gid, "")
        info.mtime = int(st.st_mtime)
        mode = st.st_mode
        if stat.S_ISREG(mode) and st.st_nlink > 1 and (st.st_dev, st.st_ino) in self.links:
            info.type, info.linkname = tarfile.LNKTYPE, self.links[(st.st_dev, st.st_ino)]
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1:
                self.links[(st.st_dev, st.st_ino)] = name
            fd, opened = open_regular(path, follow=False)
            with os.fdopen(fd, "rb") as fh:
                info.size = opened.st_size
                self.archive.addfile(info, fh)
            return
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return  # sockets have no tar form (GNU tar skips them too)
        self.archive.addfile(info)

    def close(self) -> None:
        self.archive.close()


def _archive(path: str, out: HelperOutput) -> None:
    if not os.path.lexists(path):
        raise NotFound(f"{path}: no such file or directory")
    st = os.lstat(path)
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise Unprocessable(f"{path}: not a regular file or directory")
    writer = _TarWriter(out)
    out.header()
    writer.add_tree(path, os.path.basename(path.rstrip("/")) or ".")
    writer.close()


def _grep(query: GrepQuery, out: HelperOutput) -> None:
    result = search(query)  # raises NotFound for a missing root before any output
    _send(out, json.dumps(result).encode())


# Seconds: the header deadline (the helper builds list and grep answers whole before its header) and the
# helper's CPU limit and lifetime. Reads and archives stream: their lifetime bounds a slow client too.
_LIMITS = {
    "list": (30.0, HelperLimits(cpu_seconds=60, lifetime=300)),
    "list-text": (30.0, HelperLimits(cpu_seconds=60, lifetime=300)),
    "read": (10.0, HelperLimits(cpu_seconds=600, lifetime=3600)),
    "archive": (10.0, HelperLimits(cpu_seconds=600, lifetime=3600)),
}
IDLE_SECONDS = 30.0  # the longest a helper may leave the engine waiting for its next chunk


def _work(operation: str, path: str, query: GrepQuery | None) -> Work:
    path = os.path.normpath(path)
    if operation == "grep":
        assert query is not None
        return lambda out: _grep(query, out)
    if operation in ("list", "list-text"):
        return lambda out: _list(path, out, text=operation == "list-text")
    return {"read": lambda out: _read(path, out), "archive": lambda out: _archive(path, out)}[operation]


async def open_in_image(helpers: HelperSet, lowers: list[str], mountpoint: str, operation: str, path: str,
                        query: GrepQuery | None = None) -> tuple[dict[str, Any], HelperProcess]:
    """Start a confined helper and wait (asynchronously) for its header; the caller reads the payload with
    `helper.chunks(IDLE_SECONDS)` or closes it. Errors are the EngineError the helper answered (404 missing,
    422 wrong kind), or a 504 (HelperTimeout) when it did not answer in time.

    Payloads: `list` the DirectoryList JSON, `list-text` its ls-like text, `read` the file's bytes,
    `archive` a PAX tar, `grep` (with a validated GrepQuery) the GrepResult JSON.
    """
    if operation not in OPERATIONS:
        raise EngineError(f"unknown inspect operation {operation!r}")
    if not path.startswith("/") or "\0" in path:
        raise EngineError(f"path: {path!r} is not an absolute path")
    if operation == "grep":
        assert query is not None
        header_deadline = query.deadline + 10
        limits = HelperLimits(cpu_seconds=int(query.deadline) + 30, lifetime=query.deadline + 60)
    else:
        header_deadline, limits = _LIMITS[operation]
    helper = await helpers.start(lowers, mountpoint, _work(operation, path, query), limits)
    try:
        header = await helper.header(header_deadline)
    except BaseException:
        helper.close()
        raise
    return header, helper
