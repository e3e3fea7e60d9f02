"""Hard links from a layer to files of the layers below it (`docker commit` and some builders write them:
the layer's tar names a link target it does not hold, OCI image-spec issue #1204).

containerd applies a layer onto an overlay mount of the layers below, so link(2) there copies the lower
file up into the new layer and links to the copy. Here each layer is extracted into an empty directory
(oci_layer.py), so the extraction helper reports such links (link path, target path) instead of making
them, and once the layers below are extracted a second confined helper makes them: its root is a tmpfs
with the new layer at `/layer` (writable, idmapped, as the extraction helper's root) and the layers below
at `/lower` (a read-only overlay, as an inspect helper's image), nosuid/nodev/noexec, the sandboxes' root
with EXTRACT_CAPABILITIES in that namespace only, no_new_privs, the seccomp filter, RLIMIT_FSIZE, a
deadline, no imports. Every name is resolved with openat2 RESOLVE_IN_ROOT inside its own view (a symlink
in a lower layer cannot lead into the new layer, nor a `..` out of either), the final component never
followed.

The first link to a lower file gets a copy of it (content, owner, mode, times, and the xattrs
layer_xattrs.py restores); later links to the same lower file are hard links to that copy, so the
layer's own links share one inode as the image meant. The lower file itself is left where it is (its
path in the new layer is not written): it keeps its content, the copy shares only what the link had.
A path the layer itself wrote later in the tar wins (the copy is skipped). A link to a directory refuses
the layer; to a device node it is dropped, as devices are (rootfs_import.py).

A layer so completed depends on the layers it was imported over: stored by its diff id, it is reused as
it was made for the first image that brought it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from contree_tui.engine.layer_xattrs import keep_xattr, set_xattrs_fd
from contree_tui.engine.models import EngineError, Unprocessable
from contree_tui.engine.oci_layer import open_in_root
from contree_tui.engine.rootfs_import import EXTRACT_CAPABILITIES, _exit_reason, _mib
from contree_tui.engine.sandbox.helper import HelperFailed, HelperLimits, HelperOutput, HelperSet, HelperTimeout

MAX_LINKS = 100_000  # reported per layer; each is two paths in the helper's payload (oci_layer.py caps it)
COPY_CHUNK = 1 << 20
LINK_MEMORY = 256 << 20


async def link_lower_files(helpers: HelperSet, layer: Path, lowers: list[str], links: tuple[tuple[str, str], ...],
                           mountpoint: Path, *, max_bytes: int, timeout: float) -> int:
    """Make `links` (path in the layer, target below) inside the extracted `layer`, the layers below being
    `lowers` (topmost first); returns the bytes copied. EngineError when one cannot be made."""
    mountpoint.mkdir(exist_ok=True)
    limits = HelperLimits(cpu_seconds=int(timeout) + 2, memory_bytes=LINK_MEMORY, open_files=64,
                          lifetime=timeout, file_bytes=max(1, max_bytes))
    helper = await helpers.start_linking(str(layer), lowers, str(mountpoint),
                                         lambda out: _make_links(out, links, max_bytes), limits,
                                         capabilities=EXTRACT_CAPABILITIES)
    try:
        try:
            header = await helper.header(timeout + 5)
        except HelperTimeout:
            raise HelperTimeout(f"copying the files hard-linked from lower layers did not finish within "
                                f"{timeout:g} s and was stopped (the import's timeout)") from None
        except HelperFailed as exc:
            raise HelperFailed(f"making the hard links to lower layers' files failed: {exc}") from None
        if (code := await helper.exit_code()) != 0:
            raise HelperFailed(f"the lower-links helper ended abnormally ({_exit_reason(code)})")
        return int(header.get("copied", 0))
    finally:
        helper.close()
        await helper.exit_code()  # dead before the caller removes or commits the layer
        try:
            mountpoint.rmdir()
        except OSError:
            pass


# -- the helper's side ----------------------------------------------------------------------------------

def _make_links(out: HelperOutput, links: tuple[tuple[str, str], ...], max_bytes: int) -> None:  # pragma: no cover
    layer = os.open("/layer", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    lower = os.open("/lower", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    made: dict[str, str] = {}  # lower target -> the path of its copy in the layer
    copied = 0
    for link, target in links:
        try:
            copied += _make_one(layer, lower, link, target, made, max_bytes - copied)
        except EngineError:
            raise
        except OSError as exc:
            if exc.errno == errno.EFBIG:
                raise Unprocessable(f"{link[:200]!r}: the lower file {target[:200]!r} it links to is larger than "
                                    f"the {_mib(max_bytes)} a layer may hold") from None
            raise Unprocessable(f"{link[:200]!r} is a hard link to {target[:200]!r} of a lower layer, which could "
                                f"not be copied into the layer: {os.strerror(exc.errno or errno.EIO)}") from None
    out.header(links=len(links), copied=copied)


def _make_one(layer: int, lower: int, link: str, target: str, made: dict[str, str],
              budget: int) -> int:  # pragma: no cover - in the helper
    parent, name = _parent_in_layer(layer, link)
    try:
        if target in made:  # the layer's own links share one inode
            source_dir, source_name = _parent_in_layer(layer, made[target])
            try:
                os.link(source_name, name, src_dir_fd=source_dir, dst_dir_fd=parent, follow_symlinks=False)
            except FileExistsError:
                pass  # the layer wrote this path itself, later in its tar: that entry wins
            finally:
                os.close(source_dir)
            return 0
        try:
            src = open_in_root(lower, target, os.O_PATH | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise Unprocessable(f"{link[:200]!r} is a hard link to {target[:200]!r}, which neither this layer nor "
                                "the layers below it hold") from None
        try:
            st = os.fstat(src)
            if stat.S_ISDIR(st.st_mode):
                raise Unprocessable(f"{link[:200]!r} is a hard link to the directory {target[:200]!r}")
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                return 0  # devices are never made (rootfs_import.py)
            try:
                copied = _copy(lower, target, src, st, parent, name, budget, link)
            except FileExistsError:
                return 0
        finally:
            os.close(src)
    finally:
        os.close(parent)
    made[target] = link
    return copied


def _copy(lower: int, target: str, src: int, st: os.stat_result, parent: int, name: str, budget: int,
          link: str) -> int:  # pragma: no cover - in the helper
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink("", dir_fd=src), name, dir_fd=parent)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=parent, follow_symlinks=False)
        return 0
    xattrs: list[tuple[str, bytes]] = []
    if stat.S_ISFIFO(st.st_mode):
        os.mkfifo(name, 0o600, dir_fd=parent)
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        copied = 0
    else:
        if st.st_size > budget:
            raise Unprocessable(f"{link[:200]!r}: copying the lower file it links to would pass the layer's size "
                                "limit")
        # the same file again, readable now (the lower view is a read-only overlay: it cannot have changed)
        reader = open_in_root(lower, target, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        try:
            if not stat.S_ISREG(os.fstat(reader).st_mode):
                raise Unprocessable(f"{link[:200]!r}: the lower file {target[:200]!r} changed while it was copied")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent)
            copied = 0
            while chunk := os.read(reader, COPY_CHUNK):
                os.write(fd, chunk)
                copied += len(chunk)
            xattrs = [(n, os.getxattr(reader, n)) for n in os.listxattr(reader) if keep_xattr(n, True, False)]
        finally:
            os.close(reader)
    try:
        os.fchown(fd, st.st_uid, st.st_gid)  # before the xattrs: a chown drops security.capability
        if stat.S_ISREG(st.st_mode):
            set_xattrs_fd(link, fd, xattrs)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(fd)
    return copied


def _parent_in_layer(layer: int, path: str) -> tuple[int, str]:  # pragma: no cover - in the helper
    """The directory that will hold `path` in the layer (made, 0755 root, where the tar did not make it),
    resolved inside the layer, and the entry's name."""
    parts = [p for p in os.path.normpath("/" + path).split("/") if p]
    if not parts:
        raise Unprocessable(f"a hard link names the layer's root ({path[:200]!r})")
    current = os.open("/layer", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for index, part in enumerate(parts[:-1]):
        try:
            nxt = open_in_root(layer, "/".join(parts[:index + 1]), os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            try:
                os.mkdir(part, 0o755, dir_fd=current)
            except FileExistsError:  # a dangling symlink: it names a directory the layer does not have
                raise Unprocessable(f"{path[:200]!r}: {'/'.join(parts[:index + 1])[:200]!r} is a symlink to no "
                                    "directory of the layer") from None
            nxt = open_in_root(layer, "/".join(parts[:index + 1]), os.O_RDONLY | os.O_DIRECTORY)
        os.close(current)
        current = nxt
    return current, parts[-1]
