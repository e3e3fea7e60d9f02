"""Creating a root layer from a local rootfs tarball.

A rootfs has absolute symlinks (/bin/sh -> /bin/busybox), so tarfile's safe filters refuse it, while the
fully trusted mode would follow a symlink planted by an earlier member out of the destination. The
extraction therefore runs in a forked helper chrooted into the new layer: every path and link resolves
inside it.

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

import asyncio
import os
import shutil
import tarfile
from pathlib import Path

from contree_tui.engine.models import EngineError


async def layer_from_tarball(tarball: Path, out: Path) -> None:
    try:
        archive = tarfile.open(tarball)  # noqa: SIM115 - handed to the forked child, closed below
    except (OSError, tarfile.TarError) as exc:
        raise EngineError(f"{tarball}: not a readable tar archive ({exc})") from None
    out.mkdir(mode=0o755)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - forked child
        code = 0
        try:
            os.close(read_fd)
            os.chroot(out)
            os.chdir("/")
            skipped = _devices_and_their_links(archive.getmembers())
            archive.extractall("/", numeric_owner=True,
                               filter=lambda member, _path: None if id(member) in skipped else member)
        except BaseException as exc:  # noqa: BLE001
            os.write(write_fd, str(exc).encode()[:4000])
            code = 1
        os._exit(code)
    archive.close()
    os.close(write_fd)
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    with os.fdopen(read_fd, "rb") as fh:
        message = fh.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        shutil.rmtree(out, ignore_errors=True)
        raise EngineError(f"{tarball}: extraction failed: {message or 'helper died'}")


def _devices_and_their_links(members: list[tarfile.TarInfo]) -> set[int]:
    """ids of the members to leave out: device nodes, and hard links whose target is one of them.

    A hard link to a member that was not extracted makes tarfile extract that target member again, through
    no filter (TarFile.makelink → _find_link_target: the last member of that name before the link), so
    such links are dropped with their device, transitively.
    """
    skipped: set[int] = set()
    latest: dict[str, tarfile.TarInfo] = {}
    for member in members:
        if member.ischr() or member.isblk():
            skipped.add(id(member))
        elif member.islnk():
            target = latest.get(os.path.normpath(member.linkname))
            if target is not None and id(target) in skipped:
                skipped.add(id(member))
        latest[os.path.normpath(member.name)] = member
    return skipped
