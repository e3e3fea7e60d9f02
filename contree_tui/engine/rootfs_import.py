"""Creating a root layer from a local rootfs tarball.

A rootfs has absolute symlinks (/bin/sh -> /bin/busybox), so tarfile's safe filters refuse it, while the
fully trusted mode would follow a symlink planted by an earlier member out of the destination. The
extraction therefore runs in a forked helper chrooted into the new layer: every path and link resolves
inside it. Device nodes are kept; sandboxes mount image layers nodev.
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
            archive.extractall("/", numeric_owner=True, filter="fully_trusted")
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
