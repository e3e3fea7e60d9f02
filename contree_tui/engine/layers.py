"""Layers on disk, in kernel overlay format (whiteout = char 0/0, opaque dir = `*.overlay.opaque=y`).

A committed layer is immutable. The containerd snapshotter model: a run *prepares* a writable upper dir,
*commit* renames it into `layers/` (O(1) whatever the image size), and deep chains are *squashed* into one
layer made of hard links, so no chain comes near overlay's 500-lower limit.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from contree_tui.engine.privilege import running_rootless

OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
# Overlay's own per-mount bookkeeping (origin file handles, impure markers, the random per-mount uuid):
# meaningless outside the mount that wrote it and it makes identical layers differ.
_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


def opaque_xattr() -> str:
    """The name this engine's overlay mounts read an opaque marker under: `trusted.overlay.opaque` as root,
    `user.overlay.opaque` rootless (mounted with userxattr: trusted.* cannot be set in a user namespace)."""
    return OPAQUE_XATTRS[1] if running_rootless() else OPAQUE_XATTRS[0]


def new_layer_id() -> str:
    return uuid.uuid4().hex  # hex only: overlay option parsing breaks on ',' and ':'


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    for key in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, key, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


@dataclass(frozen=True)
class UpperScan:
    entries: int
    size: int

    @property
    def empty(self) -> bool:
        return self.entries == 0


def scan_upper(upper: str) -> UpperScan:
    """Strip overlay's per-mount xattrs from a finished run's upper dir and measure it.

    Cost is proportional to what the run changed, not to the image.
    """
    entries = 0
    size = 0
    _strip_overlay_xattrs(upper)
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            entries += 1
            size += st.st_blocks * 512 if stat.S_ISREG(st.st_mode) else 0
            _strip_overlay_xattrs(path)
    return UpperScan(entries, size)


def _strip_overlay_xattrs(path: str) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name.startswith(_OVERLAY_XATTR_PREFIXES) and name not in OPAQUE_XATTRS:
            os.removexattr(path, name, follow_symlinks=False)


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- squash -----------------------------------------------------------------------------------------

def squash_layers(layer_dirs: list[str], out: str) -> None:
    """Merge diff layers (bottom first) into `out`: files are hard links, whiteouts and opaque dirs are
    kept, so `out` over the same base shows exactly what the stack showed."""
    os.mkdir(out)
    try:
        for layer in layer_dirs:
            _apply_layer(layer, out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_metadata(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    for key in os.listxattr(src, follow_symlinks=False):
        if key.startswith(_OVERLAY_XATTR_PREFIXES) and key not in OPAQUE_XATTRS:
            continue
        os.setxattr(dst, key, os.getxattr(src, key, follow_symlinks=False), follow_symlinks=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _apply_layer(layer: str, out: str) -> None:
    dirs: list[tuple[str, str, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(layer):
        rel = os.path.relpath(dirpath, layer)
        target_dir = out if rel == "." else os.path.join(out, rel)
        for name in dirnames + filenames:
            src = os.path.join(dirpath, name)
            dst = os.path.join(target_dir, name)
            st = os.lstat(src)
            if stat.S_ISDIR(st.st_mode):
                existing = os.path.isdir(dst) and not os.path.islink(dst)
                if is_opaque(src) or not existing:
                    _remove(dst)
                    os.mkdir(dst)
                dirs.append((src, dst, st))
            elif is_whiteout(st):
                _remove(dst)
                os.mknod(dst, stat.S_IFCHR | 0o000, 0)
            else:
                _remove(dst)
                if stat.S_ISREG(st.st_mode):
                    os.link(src, dst)  # layers are immutable, so sharing the inode is safe and O(1)
                elif stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(src), dst)
                    _copy_metadata(src, dst, st)
                else:
                    os.mknod(dst, st.st_mode, st.st_rdev)
                    _copy_metadata(src, dst, st)
    for src, dst, st in reversed(dirs):
        _copy_metadata(src, dst, st)
    root_st = os.lstat(layer)
    if is_opaque(layer):
        _copy_metadata(layer, out, root_st)


# -- base images --------------------------------------------------------------------------------------

def _device_nodes(directory: str, names: list[str]) -> set[str]:
    """copytree's ignore: character and block devices. copy2 would read a device's contents into a regular
    file (a debootstrap rootfs's dev/zero never ends); an image's devices have no place on the host anyway
    (see rootfs_import)."""
    skipped = set()
    for name in names:
        mode = os.lstat(os.path.join(directory, name)).st_mode
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            skipped.add(name)
    return skipped


def _copy_no_follow(src: str, dst: str) -> None:
    shutil.copy2(src, dst, follow_symlinks=False)


def layer_from_directory(source: str, out: str) -> None:
    """Copy a rootfs directory into a new layer, keeping owners, modes, links and xattrs; not device nodes.

    Unlike a tarball (rootfs_import.py) this runs in the engine, as root: the directory is a host path the
    user running the engine (root) chose, so its files are already that user's, and the copy only reads,
    lstats and writes them: nothing is parsed (no tar headers, no compression, no names looked up), loaded
    or executed. What a confined helper would add is a wall against a directory that someone else can
    change while it is copied: a file swapped for a symlink is copied as the symlink (follow_symlinks=False
    below), but a swapped parent directory is still followed. So: import only directories no other user can
    write (an image pulled from a registry goes through the tarball path).
    """
    shutil.copytree(source, out, symlinks=True, copy_function=_copy_no_follow, ignore=_device_nodes)
    for dirpath, dirnames, filenames in os.walk(source):
        for name in [".", *dirnames, *filenames]:
            src = os.path.normpath(os.path.join(dirpath, name))
            if not os.path.lexists(os.path.join(out, os.path.relpath(src, source))):
                continue  # a device node, left out above
            dst = os.path.join(out, os.path.relpath(src, source))
            st = os.lstat(src)
            os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)


BUSYBOX_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
BUSYBOX_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def build_busybox_rootfs(busybox: str, out: str) -> None:
    """A ~2 MB image from Debian's busybox-static: /bin/busybox, one symlink per applet, passwd, group."""
    os.mkdir(out, 0o755)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "var/tmp", "home"):
        os.makedirs(os.path.join(out, d), 0o755, exist_ok=True)
    os.chmod(os.path.join(out, "tmp"), 0o1777)
    os.chmod(os.path.join(out, "root"), 0o700)
    shutil.copy2(busybox, os.path.join(out, "bin/busybox"))
    os.chmod(os.path.join(out, "bin/busybox"), 0o755)
    import subprocess

    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet == "bin/busybox":
            continue
        link = os.path.join(out, applet)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink("/bin/busybox", link)
    for name, text in (("etc/passwd", BUSYBOX_PASSWD), ("etc/group", BUSYBOX_GROUP),
                       ("etc/hostname", "linuxkit\n")):
        with open(os.path.join(out, name), "w") as fh:
            fh.write(text)
