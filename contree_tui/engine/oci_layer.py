"""One OCI layer blob (gzip, zstd or plain tar) becomes a layer directory in kernel overlay format.

The blob is image content, so hostile: it is decompressed, hashed and extracted by the same confined helper
as a rootfs tarball (rootfs_import.py: pid 1 of its own namespaces, its root the new layer bind-mounted
nosuid/nodev/noexec and idmapped, the sandboxes' root with EXTRACT_CAPABILITIES only, no_new_privs, the
sandboxes' seccomp filter, RLIMIT_FSIZE, a deadline, no imports), with the same admission of entries
(owners capped, devices dropped, total size capped). On top of that the helper:

- sniffs the compression from the first bytes (1f 8b gzip, 28 b5 2f fd zstd, anything else a plain tar),
  the media type being only a hint a registry may get wrong;
- hashes the uncompressed stream as tarfile reads it (streaming mode, one pass, then the rest drained), so
  the engine can compare it with the config's diff id;
- turns OCI whiteouts into overlay's: `dir/.wh.name` becomes a char 0/0 device `dir/name` (since Linux 5.8
  mknod of a 0/0 whiteout needs no CAP_MKNOD, also in a user namespace; the seccomp filter allows mknodat),
  and reports each `dir/.wh..wh..opq`: only a process with CAP_SYS_ADMIN in the initial user namespace may
  set `trusted.overlay.opaque`, so the engine sets it afterwards (mark_opaque), through openat2 with
  RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV and O_DIRECTORY: the
  names it gets cannot lead it out of the layer or into anything but a directory, and it reads no content.
  No `.wh.*` entry lands as a file.
"""

from __future__ import annotations

import asyncio
import bz2
import ctypes
import errno
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard  # loaded here, in the engine: a helper refuses imports (helper._NoImports)

from contree_tui.engine import layers
from contree_tui.engine.layer_xattrs import MAX_REPORTED
from contree_tui.engine.models import EngineError, Unprocessable
from contree_tui.engine.rootfs_import import (
    DEFAULT_IMPORT_TIMEOUT,
    EXTRACT_CAPABILITIES,
    IMPORT_MEMORY,
    _Admission,
    _exit_reason,
    _mib,
    _NumericOwners,
    _TooLarge,
)
from contree_tui.engine.sandbox.helper import (
    INPUT_FD,
    HelperFailed,
    HelperLimits,
    HelperOutput,
    HelperProcess,
    HelperSet,
    HelperTimeout,
)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
READ_CHUNK = 1 << 20
# The helper reads its blob in steps of this much: the engine's progress (its input position) moves by as
# much, and a gzip of zeros can hold 1000x that.
INPUT_BUFFER = 128 << 10
# The opaque dirs come back as the helper's payload (NUL-separated), not in its 64 KiB header: a layer may
# replace thousands of directories. 16 MiB is ~100 000 paths of 160 bytes.
MAX_OPAQUE_PAYLOAD = 16 << 20
PROGRESS_EVERY = 0.1  # s: how often the engine reads how far the helper got in the blob

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class ExtractedLayer:
    diff_id: str  # sha256:<hex> of the uncompressed tar, as the helper measured it
    entries: int
    size: int  # bytes of regular files
    opaque: tuple[str, ...]  # relative directory paths marked opaque ("" = the layer's root)
    xattrs: int = 0  # extended attributes restored (layer_xattrs.py)
    xattrs_skipped: tuple[str, ...] = ()  # names of those left out (trusted.*, security.selinux, ...), distinct
    source_digest: str = ""  # sha256:<hex> of the blob's bytes as the helper read them (compressed)
    # hard links to files of lower layers, not made yet: (path in the layer, target path) (lower_links.py)
    lower_links: tuple[tuple[str, str], ...] = ()


async def layer_from_tarball(helpers: HelperSet, tarball: Path, out: Path, *, max_bytes: int,
                             timeout: float = DEFAULT_IMPORT_TIMEOUT,
                             progress: ProgressFn | None = None) -> ExtractedLayer:
    """A local rootfs tarball (plain, gzip, zstd, bzip2 or xz) into the new directory `out`, by the same
    helper as a layer blob; errors name the tarball. The path may be a symlink (the user's own choice of
    file: it is opened by the engine, never by the helper)."""
    try:
        return await extract_layer(helpers, tarball, out, max_bytes=max_bytes, timeout=timeout, progress=progress,
                                   follow=True)
    except HelperTimeout:
        raise HelperTimeout(f"{tarball}: the import did not finish within {timeout:g} s and was stopped (a very "
                            "large or slow tarball? the engine's import timeout)") from None
    except EngineError as exc:
        message = str(exc).replace("the layer's extraction helper", "the import helper")
        raise type(exc)(message if message.startswith(str(tarball)) else f"{tarball}: {message}",
                        exc.status) from None


async def extract_layer(helpers: HelperSet, blob: Path, out: Path, *, max_bytes: int, timeout: float,
                        progress: ProgressFn | None = None, follow: bool = False,
                        lower_links: bool = False) -> ExtractedLayer:
    """Extract the layer blob `blob` into the new directory `out` (opaque dirs marked); on any failure, or
    when cancelled, `out` is gone and EngineError raised. `progress` gets the blob bytes read so far."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(blob, flags)
    except OSError as exc:
        raise EngineError(f"{blob if follow else blob.name}: cannot open ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device at the path would block the helper
            raise EngineError(f"{blob if follow else blob.name}: not a regular file")
        out.mkdir(mode=0o755)
        id_limit = helpers.users.ids.count if helpers.users is not None else None
        limits = HelperLimits(cpu_seconds=int(timeout) + 2, memory_bytes=IMPORT_MEMORY, open_files=64,
                              lifetime=timeout, file_bytes=max_bytes)
        try:
            helper = await helpers.start_writable(
                str(out), lambda result: _extract(result, max_bytes, id_limit, lower_links), limits,
                capabilities=EXTRACT_CAPABILITIES, input_fd=fd)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            raise
    finally:
        os.close(fd)
    try:
        try:
            header = await _header_with_progress(helper, timeout + 5, progress)
            # With a payload, all of it arriving is the success (read_all then closes the helper, which may
            # not have exited yet); without one, its exit status is.
            payload = await helper.read_all(MAX_OPAQUE_PAYLOAD, idle=timeout + 5) if header.get("size") else b""
        except HelperTimeout:
            raise HelperTimeout(f"extracting the layer did not finish within {timeout:g} s and was "
                                "stopped (the import's timeout)") from None
        except HelperFailed:
            raise HelperFailed("the layer's extraction helper ended without an answer "
                               f"({_exit_reason(await helper.exit_code())})") from None
        if not payload and (code := await helper.exit_code()) != 0:
            raise HelperFailed(f"the layer's extraction helper ended abnormally ({_exit_reason(code)})")
        diff_id = header.get("diff_id")
        if not isinstance(diff_id, str) or not diff_id.startswith("sha256:"):
            raise HelperFailed("the layer's extraction helper sent a malformed answer")
        opaque, links = _parse_payload(payload)
        if header.get("root_opaque"):
            opaque = ("", *opaque)
        await asyncio.to_thread(mark_opaque, str(out), opaque)
        skipped = header.get("xattrs_skipped")
        source_digest = header.get("source_digest")
        return ExtractedLayer(diff_id, int(header.get("entries", 0)), int(header.get("bytes", 0)), opaque,
                              int(header.get("xattrs", 0)),
                              tuple(str(n)[:100] for n in skipped[:MAX_REPORTED]) if isinstance(skipped, list) else (),
                              source_digest if isinstance(source_digest, str) else "", links)
    except BaseException:
        helper.close()
        await asyncio.shield(helper.exit_code())  # dead before its partial tree goes: no write lands after
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, out, True))
        raise
    finally:
        helper.close()


def _parse_payload(payload: bytes) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The helper's payload: NUL-separated records, `o<dir>` an opaque directory, `l<path>` then `<target>`
    a hard link to a lower layer's file."""
    opaque: list[str] = []
    links: list[tuple[str, str]] = []
    records = iter(payload.split(b"\0")) if payload else iter(())
    for record in records:
        text = record.decode("utf-8", "surrogateescape")
        if text.startswith("o") and len(text) > 1:
            opaque.append(text[1:])
        elif text.startswith("l"):
            target = next(records, None)
            if target is None or len(text) < 2:
                raise HelperFailed("the layer's extraction helper sent a malformed answer")
            links.append((text[1:], target.decode("utf-8", "surrogateescape")))
        elif text:
            raise HelperFailed("the layer's extraction helper sent a malformed answer")
    return tuple(opaque), tuple(links)


async def _header_with_progress(helper: HelperProcess, deadline: float,
                                progress: ProgressFn | None) -> dict[str, object]:
    task = asyncio.ensure_future(helper.header(deadline))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY)
            if done:
                return task.result()
            if progress is not None:
                position = _input_position(helper.pid)
                if position is not None:
                    progress(position)
    finally:
        if not task.done():
            task.cancel()


def _input_position(pid: int) -> int | None:
    """How far the helper has read its input (its own open file description: fdinfo's pos)."""
    try:
        with open(f"/proc/{pid}/fdinfo/{INPUT_FD}", "rb") as fh:
            for line in fh:
                if line.startswith(b"pos:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# -- opaque directories: set by the engine, beneath the layer's root -------------------------------------

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the tables were unified)
RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH = 0x01, 0x02, 0x04, 0x08
_libc = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


RESOLVE_IN_ROOT = 0x10


def open_in_root(root_fd: int, path: str, flags: int) -> int:
    """`path` opened as if `root_fd` were `/` (RESOLVE_IN_ROOT: absolute symlinks and `..` stay inside it;
    no magic links, no other mount): how a helper that sees two trees names a file in one of them."""
    extra = os.O_CLOEXEC if flags & os.O_PATH else os.O_CLOEXEC | os.O_NOCTTY  # openat2: O_PATH takes no other
    how = _OpenHow(flags | extra, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
    return _openat2(root_fd, path, how)


def open_beneath(root_fd: int, path: str) -> int:
    """A directory strictly beneath `root_fd`, reached without following any symlink or leaving the mount:
    what a hostile name may not do, the kernel refuses (EXDEV, ELOOP, ENOTDIR) instead of us checking."""
    return _openat2(root_fd, path, _OpenHow(os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY,
                                            0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
                                            | RESOLVE_NO_XDEV))


def _openat2(root_fd: int, path: str, how: _OpenHow) -> int:
    fd = _libc.syscall(_SYS_OPENAT2, root_fd, path.encode("utf-8", "surrogateescape"), ctypes.byref(how),
                       ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def mark_opaque(layer: str, paths: tuple[str, ...]) -> None:
    """Set overlay's opaque xattr on each directory `paths` names inside `layer` (the helper's report): as
    root `trusted.overlay.opaque`, rootless `user.overlay.opaque` (layers.opaque_xattr)."""
    opaque_xattr = layers.opaque_xattr()
    root = os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for path in paths:
            if path == "":
                os.setxattr(root, opaque_xattr, b"y")
                continue
            try:
                fd = open_beneath(root, path)
            except OSError as exc:
                raise Unprocessable(f"an opaque-directory marker names {path[:200]!r}, which is not a directory "
                                    f"inside the layer ({os.strerror(exc.errno or errno.EINVAL)})") from None
            try:
                os.setxattr(fd, opaque_xattr, b"y")
            finally:
                os.close(fd)
    finally:
        os.close(root)


# -- the helper's side ----------------------------------------------------------------------------------

class _HashingInput(io.RawIOBase):
    """The helper's input fd, hashed as it is read (the compressed bytes: a rootfs tarball's source digest)."""

    def __init__(self, fd: int) -> None:
        self._file = io.FileIO(fd, "rb")
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        if count:
            self.sha256.update(memoryview(buffer)[:count])
        return count or 0


class _Hashing:
    """The uncompressed stream as tarfile reads it, hashed on the way (the layer's diff id)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)  # type: ignore[attr-defined]
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass


def _decompressed(source: object) -> object:  # pragma: no cover - runs in the helper
    head = source.peek(6)[:6]  # type: ignore[attr-defined]
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[arg-type]
    if head.startswith(ZSTD_MAGIC):
        return zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)  # type: ignore[arg-type]
    if head.startswith(BZIP2_MAGIC):  # not in OCI; rootfs tarballs (.tar.bz2, .tar.xz) may be
        return bz2.BZ2File(source)  # type: ignore[arg-type]
    if head == XZ_MAGIC:
        return lzma.LZMAFile(source)  # type: ignore[arg-type]
    return source


def _extract_admitted(archive: tarfile.TarFile, admit: _Admission) -> None:  # pragma: no cover - in the helper
    """extractall with `admit` choosing the members, on every Python 3.11: extractall's `filter` argument came
    with 3.11.4 (Debian 12's python3 is 3.11.2: "unexpected keyword argument 'filter'"), and 3.14 makes 'data'
    the default filter, which refuses a rootfs's absolute symlinks. Members stream by in archive order as
    before; directories still get their modes and times after their contents (extractall does that)."""
    def admitted() -> Iterator[tarfile.TarInfo]:
        for member in archive:
            kept = admit(member, "/")
            if kept is not None:
                yield kept
    trusted: dict[str, Any] = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
    archive.extractall("/", members=admitted(), numeric_owner=True, **trusted)


def _extract(out: HelperOutput, max_bytes: int, id_limit: int | None,  # pragma: no cover - in the helper
             lower_links: bool) -> None:
    """In the helper, whose root is the new layer: the blob on INPUT_FD, decompressed, hashed, extracted."""
    raw = _HashingInput(INPUT_FD)
    source = io.BufferedReader(raw, INPUT_BUFFER)
    stream = _Hashing(_decompressed(source))
    admit = _Whiteouts(max_bytes, id_limit, lower_links)
    try:
        archive = _NumericOwners.open(fileobj=stream, mode="r|")  # type: ignore[arg-type]
        _extract_admitted(archive, admit)
        stream.drain()  # the end-of-archive blocks and any padding are part of the diff id too
        while source.read(READ_CHUNK):  # and whatever follows the compressed stream, of the source digest
            pass
        opaque = admit.finish()
    except _TooLarge:
        raise Unprocessable(f"its files hold more than the {_mib(max_bytes)} a layer may hold") from None
    except MemoryError:
        raise Unprocessable(f"too many entries for the import's {_mib(IMPORT_MEMORY)} of memory") from None
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise Unprocessable(f"a file is larger than the {_mib(max_bytes)} a layer may hold") from None
        raise Unprocessable(f"extraction failed: {exc}") from None
    except (tarfile.TarError, EOFError, ValueError, zstandard.ZstdError, lzma.LZMAError) as exc:
        raise Unprocessable(f"not a readable tar archive (plain, gzip, zstd, bzip2 or xz): {exc}") from None
    except Unprocessable:
        raise
    except KeyError:
        raise Unprocessable("a hard link points outside the layer (or at a member not in it)") from None
    except Exception as exc:  # noqa: BLE001 - whatever else a hostile layer provokes in tarfile: its answer
        raise Unprocessable(f"extraction failed: {type(exc).__name__}: {exc}") from None
    records = [b"o" + p.encode("utf-8", "surrogateescape") for p in opaque if p]
    for path, target in admit.lower_links or ():
        records += [b"l" + path.encode("utf-8", "surrogateescape"), target.encode("utf-8", "surrogateescape")]
    payload = b"\0".join(records)
    out.header(diff_id="sha256:" + stream.sha256.hexdigest(), entries=admit.entries, bytes=admit.total,
               size=len(payload), root_opaque="" in opaque, xattrs=admit.xattrs,
               source_digest="sha256:" + raw.sha256.hexdigest(),
               xattrs_skipped=list(admit.xattrs_skipped))
    out.write(payload)


def _relative(name: str) -> str:
    """A member's path relative to the layer's root ("" for the root); a `..` that climbs out is refused."""
    path = os.path.normpath("/" + name).lstrip("/")
    if path == ".":
        return ""
    return path


class _Whiteouts(_Admission):
    """rootfs_import's admission (owners, devices, sizes), plus OCI whiteouts: `.wh.` entries are taken out
    of the extraction and applied once every member is written (mknod of a whiteout where the layer itself
    wrote nothing, an opaque mark for the engine to set)."""

    def __init__(self, max_bytes: int, id_limit: int | None, lower_links: bool = False) -> None:
        super().__init__(max_bytes, id_limit, lower_links)
        self.whiteouts: list[str] = []
        self.opaque: list[str] = []

    def __call__(self, member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        raw = member.name.rstrip("/")
        parent_name, _, base = raw.rpartition("/")
        if base.startswith(WHITEOUT_PREFIX) or any(c.startswith(WHITEOUT_PREFIX) for c in parent_name.split("/")):
            if any(c.startswith(WHITEOUT_PREFIX) for c in parent_name.split("/")):
                pass  # inside a `.wh.` directory: nothing of it lands
            elif base == OPAQUE_MARKER:
                self.opaque.append(_relative(parent_name))
            elif base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                pass  # aufs's own bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless here
            else:
                name = base[len(WHITEOUT_PREFIX):]
                if name in ("", ".", ".."):
                    raise Unprocessable(f"the whiteout {member.name[:200]!r} names no file of the layer below")
                self.whiteouts.append(_relative(f"{parent_name}/{name}" if parent_name else name))
            self._skipped.add(id(member))  # a hard link to it is dropped with it (see _Admission)
            self._latest[os.path.normpath(member.name)] = member
            return None
        return super().__call__(member, path)

    def finish(self) -> list[str]:  # pragma: no cover - runs in the helper
        """Apply the whiteouts (after every member: the layer's own entries win); the opaque dirs, for the
        engine. A whiteout of a path the layer itself made a directory makes that directory opaque (the
        lower one was deleted, this one replaces it)."""
        opaque = list(dict.fromkeys(self.opaque))
        for path in dict.fromkeys(self.whiteouts):
            if not path:
                continue
            full = "/" + path
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(full), 0o755, exist_ok=True)
                os.mknod(full, stat.S_IFCHR | 0o000, 0)
                self.entries += 1
                continue
            if stat.S_ISDIR(st.st_mode):
                opaque.append(path)
        for path in opaque:
            if path and not os.path.lexists("/" + path):
                os.makedirs("/" + path, 0o755, exist_ok=True)
        return list(dict.fromkeys(opaque))
