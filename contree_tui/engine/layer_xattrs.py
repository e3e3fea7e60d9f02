"""Which extended attributes of a layer tar are restored, and how (the extraction helper's side).

A tar carries a file's xattrs as PAX records `SCHILY.xattr.<name>=<value>` (GNU tar --xattrs, Go's
archive/tar as Docker, BuildKit and containerd write them); Python's tarfile reads them into pax_headers
and ignores them. Layers need two kinds:

- `user.*`, on regular files and directories (the only inodes the kernel allows them on), as they are;
- `security.capability`, file capabilities, on regular files: Debian's /bin/ping carries cap_net_raw+ep
  instead of a setuid bit. The helper sets them as the sandboxes' root holding CAP_SETFCAP in that user
  namespace only, through the layer's idmapped mount, so the kernel (cap_convert_nscap) stores the value
  with the on-disk root id 0: a plain v2 value, as the image had it. A v3 value (one written inside a user
  namespace; its root id is that host's) is rewritten as v2 first: in a layer, root is the image's root,
  and a root id from someone else's host would not map here (EINVAL).

Everything else is left out and reported by name: `trusted.*` (overlay's own metadata among them: a layer
may not plant `trusted.overlay.opaque`/`redirect`/`metacopy`, which could point overlay at other layers'
files), `user.overlay.*` (the same metadata for unprivileged overlay mounts), every other `security.*`
(an SELinux or IMA label of another host means nothing here, and setting one needs CAP_SYS_ADMIN in the
initial namespace anyway) and `system.*` (POSIX ACLs: not restored; their ids would need mapping).

Sizes: a name is at most 255 bytes and a value at most 64 KiB (the kernel's XATTR_NAME_MAX and
XATTR_SIZE_MAX); a longer one refuses the layer, as would a value the filesystem cannot hold (ext4 keeps a
file's xattrs in one 4 KiB block): silently dropping content is worse than a clear refusal.
"""

from __future__ import annotations

import errno
import os
import struct
import tarfile

from contree_tui.engine.models import Unprocessable

PAX_PREFIX = "SCHILY.xattr."
CAPABILITY = "security.capability"
MAX_NAME = 255  # XATTR_NAME_MAX
MAX_VALUE = 64 << 10  # XATTR_SIZE_MAX
MAX_REPORTED = 20  # distinct skipped names the helper reports (a hostile layer may invent thousands)
# vfs_cap_data (linux/capability.h): le32 magic_etc = revision | flags, then (permitted, inheritable) x 2
_REVISION_MASK, _REVISION_2, _REVISION_3 = 0xFF000000, 0x02000000, 0x03000000
_CAP_V2_SIZE, _CAP_V3_SIZE = 20, 24


def layer_xattrs(member: tarfile.TarInfo) -> tuple[list[tuple[str, bytes]], list[str]]:
    """(the xattrs to set on `member`, the names left out); Unprocessable for an oversized one."""
    keep: list[tuple[str, bytes]] = []
    skipped: list[str] = []
    for key, text in member.pax_headers.items():
        if not key.startswith(PAX_PREFIX):
            continue
        name = key[len(PAX_PREFIX):]
        # tarfile decoded the value as UTF-8 with surrogateescape (hdrcharset=BINARY): this is its bytes
        value = text.encode("utf-8", "surrogateescape")
        if not name or len(name.encode("utf-8", "surrogateescape")) > MAX_NAME or "\0" in name:
            raise Unprocessable(f"{member.name[:200]!r} carries an xattr whose name is empty or longer than "
                                f"{MAX_NAME} bytes")
        if len(value) > MAX_VALUE:
            raise Unprocessable(f"{member.name[:200]!r} carries the xattr {name[:100]!r} of {len(value)} bytes; "
                                f"at most {MAX_VALUE} are possible")
        if keep_xattr(name, member.isreg(), member.isdir()):
            keep.append((name, _as_v2(member, value) if name == CAPABILITY else value))
        else:
            skipped.append(name)
    return keep, skipped


def keep_xattr(name: str, regular: bool, directory: bool) -> bool:
    """Whether an xattr `name` is restored on a regular file or directory (and nothing else)."""
    if name.startswith("user.") and not name.startswith("user.overlay."):
        return regular or directory
    return name == CAPABILITY and regular


def _as_v2(member: tarfile.TarInfo, value: bytes) -> bytes:
    if len(value) < 4:
        raise Unprocessable(f"{member.name[:200]!r}: its {CAPABILITY} xattr is malformed ({len(value)} bytes)")
    (magic,) = struct.unpack_from("<I", value)
    if magic & _REVISION_MASK == _REVISION_3 and len(value) == _CAP_V3_SIZE:
        return struct.pack("<I", _REVISION_2 | (magic & ~_REVISION_MASK)) + value[4:_CAP_V2_SIZE]
    return value  # v2 (or v1) as it is; the kernel checks it


def set_xattrs(member: tarfile.TarInfo, path: str, xattrs: list[tuple[str, bytes]]) -> None:  # pragma: no cover
    """Set `xattrs` on the extracted `path` (after its chown: a chown drops security.capability)."""
    set_xattrs_fd(member.name, path, xattrs)


def set_xattrs_fd(entry: str, path: str | int, xattrs: list[tuple[str, bytes]]) -> None:  # pragma: no cover
    """Set `xattrs` on `path` (a path, not followed if a symlink, or an fd); `entry` names it in errors."""
    for name, value in xattrs:
        try:
            if isinstance(path, int):
                os.setxattr(path, name, value)
            else:
                os.setxattr(path, name, value, follow_symlinks=False)
        except OSError as exc:
            reason = {errno.ENOSPC: "the filesystem has no room for it (ext4 keeps a file's xattrs in one block)",
                      errno.E2BIG: "the filesystem has no room for it",
                      errno.EINVAL: "the kernel refuses the value",
                      errno.ENOTSUP: "the state dir's filesystem does not support it"}.get(
                          exc.errno or 0, os.strerror(exc.errno or errno.EIO))
            raise Unprocessable(f"{entry[:200]!r}: its xattr {name[:100]!r} ({len(value)} bytes) could not "
                                f"be restored: {reason}") from None
