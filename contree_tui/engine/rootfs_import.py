"""What extracting a tarball into a layer needs, shared by rootfs tarballs and OCI layer blobs (oci_layer.py
runs the helper for both: layer_from_tarball, extract_layer): the helper's capabilities and limits, and the
admission of each entry (owners, sizes, devices).

A tarball is image content, so hostile: its names, links, sizes and compressed stream are parsed by a
process holding no host privilege (sandbox/helper.py, start_writable): pid 1 of its own pid namespace, in
its own mount, ipc, uts and network namespaces, whose root is the new layer directory bind-mounted nosuid,
nodev, noexec (pivot_root + detach: no host path exists for it), reading the tarball from an fd the engine
opened. It runs as the root of the sandboxes' user namespace (host uid BASE) holding EXTRACT_CAPABILITIES
in that namespace only, through an idmapped view of the layer (a chown to u lands on disk as u; owners
past 65535 are refused), no_new_privs, the sandboxes' seccomp filter,
RLIMIT_FSIZE at the engine's max layer bytes, no forks, and Python imports refused. The engine waits for it
on the event loop (a pipe and a pidfd), kills it at the import deadline, and removes the partial layer
on any failure: nothing is committed.

A rootfs has absolute symlinks (/bin/sh -> /bin/busybox), so tarfile's safe filters refuse it, while the
fully trusted mode follows links planted by earlier members. Inside the helper both are harmless: `/`,
`..` and every link resolve inside the layer. (Before, the engine forked a child that chrooted into the
layer as full root: a chroot is no wall for root, sandbox-runtime.md §1.2, and tarfile parsed as root.)

Device nodes (character and block) are not extracted: a node from an image would be a real device on the
host, in the state dir, openable by anyone its mode lets in (a tarball's `dev/sda` at 0666 is the disk). Sandboxes
never need them (they get a fresh /dev of bind-mounted host nodes, and layers are mounted nodev), so they are
dropped, with every hard link to them. That includes char 0/0, overlayfs's whiteout: in a root layer there is
nothing below for it to hide, so leaving the path out reads the same. FIFOs are kept, as Docker keeps them.
setuid/setgid bits are kept too, as Docker keeps them: a sandbox's bounding set has none of the capabilities
that make a setuid root program dangerous (no SYS_ADMIN, MKNOD, NET_RAW, ...) and its syscall filter
(sandbox/seccomp.py) refuses mount, unshare, keyctl and the like whoever calls them; layers are only ever
mounted inside sandboxes, never executed from on the host.
"""

from __future__ import annotations

import os
import signal
import tarfile

from contree_tui.engine.layer_xattrs import MAX_REPORTED, layer_xattrs, set_xattrs
from contree_tui.engine.models import Unprocessable
from contree_tui.engine.privilege import running_rootless
from contree_tui.engine.sandbox.credentials import (
    CAP_CHOWN,
    CAP_DAC_OVERRIDE,
    CAP_FOWNER,
    CAP_FSETID,
    CAP_SETFCAP,
)
from contree_tui.engine.sandbox.helper import HelperSet
from contree_tui.sandbox_ids import ID_COUNT

# What extracting a rootfs as an unprivileged uid needs, and nothing more:
#   CHOWN        give each file its numeric owner from the tarball (root's files, daemons' files)
#   DAC_OVERRIDE create entries in directories the tarball already made 0555 or owned by another uid
#   FOWNER       chmod and utime files that are no longer ours once chowned; hard links to them
#                (fs.protected_hardlinks)
#   FSETID       keep a setgid bit on a file whose group the helper is not in (chmod would clear it)
#   SETFCAP      restore a file's security.capability xattr (layer_xattrs.py: /bin/ping's cap_net_raw);
#                held in the sandboxes' namespace, it lets the kernel store the value only relative to
#                that namespace's root, which the idmapped layer maps to on-disk root (a plain v2 value)
# Not MKNOD (devices are skipped; FIFOs need no capability), not DAC_READ_SEARCH (no open_by_handle_at:
# the seccomp filter refuses it too), not SETUID/SETGID, SYS_ADMIN or any other.
EXTRACT_CAPABILITIES = frozenset({CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_SETFCAP})
MAX_IMPORTS = 2  # at once: each takes a CPU and up to IMPORT_MEMORY
IMPORT_MEMORY = 1 << 30  # tarfile keeps every member's header: ~1 KiB each, so a million entries fit
DEFAULT_IMPORT_TIMEOUT = 600.0
MAX_LOWER_LINKS = 100_000  # hard links to lower layers' files in one layer (two paths each in a payload)


def import_helpers() -> HelperSet:
    """The engine's extraction helpers: a third import waits (up to a minute) for one of two to end."""
    return HelperSet(max_live=MAX_IMPORTS, slot_wait=60.0, what="rootfs imports")


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# -- the helper's side ----------------------------------------------------------------------------------

class _NumericOwners(tarfile.TarFile):
    """tarfile chowns only when euid is 0 and may look names up (NSS); the helper is neither root nor may
    it read the image's /etc: owners are the tarball's numbers, always. Then the member's xattrs
    (layer_xattrs.py), after the chown: a chown drops security.capability, so one already right is not
    repeated (a hard link to a capable file would otherwise strip its target)."""

    def chown(self, tarinfo: tarfile.TarInfo, targetpath: str, numeric_owner: bool) -> None:
        try:
            st = os.lstat(targetpath)
            if (st.st_uid, st.st_gid) != (tarinfo.uid, tarinfo.gid):
                os.lchown(targetpath, tarinfo.uid, tarinfo.gid)
        except OSError as exc:
            raise tarfile.ExtractError("could not change owner") from exc
        if tarinfo.pax_headers:
            set_xattrs(tarinfo, targetpath, layer_xattrs(tarinfo)[0])


class _TooLarge(Exception):
    pass


class _Admission:
    """extractall's filter, called member by member in archive order, before each is written.

    Sizes: the running total of regular files' sizes may not pass max_bytes. A bomb's first header already
    says 2 GiB, so it is refused before a byte is written or decompressed past that header; a tarball that
    only gets there later is refused there, its partial layer removed by the engine.

    Owners: with sandbox users, an id the sandbox namespace does not map (>= id_limit) refuses the tarball.

    Device nodes are left out, and hard links whose target is one of them: a hard link to a member that was
    not extracted makes tarfile extract that target member again, through no filter (TarFile.makelink →
    _find_link_target: the last member of that name before the link), so such links are dropped with their
    device, transitively.
    """

    def __init__(self, max_bytes: int, id_limit: int | None = None, lower_links: bool = False) -> None:
        self.max_bytes, self.id_limit = max_bytes, id_limit
        # With layers below: hard links to files the tar does not hold, (path, target) for lower_links.py to
        # make once those layers are extracted; without (a root layer), such a link refuses the tar.
        self.lower_links: list[tuple[str, str]] | None = [] if lower_links else None
        self._lower: dict[int, str] = {}  # ids of those link members -> their lower target
        self.total = self.entries = 0
        self._skipped: set[int] = set()  # ids of members left out (tarfile keeps every member alive)
        self._latest: dict[str, tarfile.TarInfo] = {}
        self._names: set[str] = set()  # every entry's path inside the layer, as a hard link names its target
        self.xattrs = 0  # restored (counted here, set by _NumericOwners.chown)
        self.xattrs_skipped: dict[str, None] = {}  # distinct names left out, the first MAX_REPORTED

    def _link_lower(self, member: tarfile.TarInfo, target: str) -> None:
        assert self.lower_links is not None
        if "\0" in member.name or "\0" in member.linkname:  # the paths travel NUL-separated
            raise Unprocessable("a hard link's name holds a NUL byte")
        if len(self.lower_links) >= MAX_LOWER_LINKS:
            raise Unprocessable(f"more than {MAX_LOWER_LINKS} hard links to files of lower layers")
        self.lower_links.append((_inside(member.name), target))
        self._lower[id(member)] = target
        self._skipped.add(id(member))

    def __call__(self, member: tarfile.TarInfo, _path: str) -> tarfile.TarInfo | None:
        if self.id_limit is not None and (member.uid >= self.id_limit or member.gid >= self.id_limit):
            # chown would fail (the id is not mapped in the sandbox namespace) and tarfile only logs that
            raise Unprocessable(owner_refused(member.name, member.uid, member.gid, self.id_limit))
        if member.isreg():
            self.total += member.size
            if self.total > self.max_bytes:
                raise _TooLarge
        if member.ischr() or member.isblk():
            self._skipped.add(id(member))
        elif member.islnk():
            target = self._latest.get(os.path.normpath(member.linkname))
            if target is not None and id(target) in self._lower:  # a link to a link to a lower file
                self._link_lower(member, self._lower[id(target)])
            elif target is not None and id(target) in self._skipped:
                self._skipped.add(id(member))
            elif _inside(member.linkname) not in self._names and self.lower_links is not None:
                self._link_lower(member, _inside(member.linkname))
            elif _inside(member.linkname) not in self._names:
                raise Unprocessable(
                    f"{member.name[:200]!r} is a hard link to {member.linkname[:200]!r}, which is not an earlier "
                    "entry of this tar: a link to a file of a lower layer (as `docker commit` or some builders "
                    "write) is not supported; each layer must hold the targets of its hard links")
        self._latest[os.path.normpath(member.name)] = member
        self._names.add(_inside(member.name))
        if id(member) in self._skipped:
            return None
        if member.pax_headers:  # checked now, before the member is written: an oversized one refuses the tar
            keep, skipped = layer_xattrs(member)
            self.xattrs += len(keep)
            for name in skipped:
                if len(self.xattrs_skipped) < MAX_REPORTED:
                    self.xattrs_skipped[name[:100]] = None
        self.entries += 1
        return member


def owner_refused(name: str, uid: int, gid: int, limit: int) -> str:
    """Why a file's owner refuses its layer, and the fix. Rootless the sandboxes have only the ids the
    engine's namespace maps: 1 + the user's /etc/subuid range, at most 65536 (podman says "potentially
    insufficient UIDs or GIDs available in user namespace"). Asked in the helper: running_rootless() was
    answered (and cached) by Engine.open before any helper forked."""
    refused = f"{name[:200]!r} is owned by {uid}:{gid}"
    if running_rootless() and limit < ID_COUNT:
        return (f"{refused}, an id the engine's user namespace does not have: it maps {limit} ids (0 is the user "
                f"running the engine, 1..{limit - 1} their /etc/subuid and /etc/subgid range): insufficient "
                f"subordinate ids. Give the user a range of at least {ID_COUNT - 1} ids (as root, once: `usermod "
                f"--add-subuids 100000-165535 --add-subgids 100000-165535 USER`, a range no other user has), then "
                "stop and start the engine")
    return (f"{refused}; files in an image may have owners and groups 0..{limit - 1} only (sandbox user ids"
            f"{': the most a rootless engine maps' if running_rootless() else ''})")


def _inside(name: str) -> str:
    """A member's or link target's path inside the layer: tarfile extracts into "/", so "/etc/a", "./etc/a"
    and "etc/a" are one file, and `..` stops at the layer's root."""
    return os.path.normpath("/" + name).lstrip("/")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"
