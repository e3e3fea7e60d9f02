"""Attack 1 of issue #10: image content loaded into the inspect helper while it had host privileges.

A run plants a shared library and points the image's NSS (or gconv, or ld.so.preload) configuration at it;
an inspect request then made the helper, host root with every capability, run the library's constructor:
`tarfile` looks up owner names through pwd/grp, which read the image's /etc/nsswitch.conf and dlopen the
module it names. The planted constructor tries to write a marker file at a host path (directly, and after
the classic chroot escape), so a marker on the host means image code ran with host privileges.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.security.served_engine import busybox, run, upload

CONSTRUCTOR = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void mark(const char *how) {
    int fd = open(MARKER, O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd >= 0) {
        dprintf(fd, "%s: uid=%d euid=%d\n", how, (int)getuid(), (int)geteuid());
        close(fd);
    }
}

__attribute__((constructor)) static void planted(void) {
    mark("direct");
    /* escape a chroot: move the root below the cwd, then climb out of it */
    if (chroot("/etc") == 0) {
        for (int i = 0; i < 64; i++) chdir("..");
        chroot(".");
        mark("after chroot escape");
    }
}
"""

LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib", "/lib64")


@pytest.fixture(scope="module")
def planted_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """The library's bytes and the host path its constructor writes to (absent unless it ran)."""
    work = tmp_path_factory.mktemp("nss")
    marker = work / "marker"
    source = work / "planted.c"
    source.write_text(CONSTRUCTOR)
    library = work / "planted.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", f'-DMARKER="{marker}"', "-o", str(library), str(source)],
                   check=True, capture_output=True)
    return library.read_bytes(), marker


async def _plant(api: httpx.AsyncClient, library: bytes, script: str) -> str:
    """A child of busybox with the library at every default library path as `libnss_x.so.2` (and a gconv
    module name), then `script` (which writes the configuration that names it)."""
    file_uuid = await upload(api, library)
    files = {f"{d}/libnss_x.so.2": {"uuid": file_uuid, "mode": "0755"} for d in LIB_DIRS}
    files["/usr/lib/x86_64-linux-gnu/gconv/X.so"] = {"uuid": file_uuid, "mode": "0755"}
    return await run(api, await busybox(api), script, files)


async def _inspect_everything(api: httpx.AsyncClient, image: str, marker: Path) -> None:
    """Every inspect request, over the paths that make a helper look up names; the marker is checked after
    each (once the old helper had escaped its chroot, an archive of / was the whole host)."""
    def contained() -> None:
        assert not marker.exists(), f"image code ran on the host: {marker.read_text()}"

    for path in ("/etc", "/lib", "/"):
        archive = await api.get(f"/v1/inspect/{image}/archive", params={"path": path})
        contained()
        assert archive.status_code == 200, archive.text
        with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
            assert tar.getnames()
        listing = await api.get(f"/v1/inspect/{image}/list", params={"path": path})
        contained()
        assert listing.status_code == 200, listing.text
        assert (await api.get(f"/v1/inspect/{image}/list", params={"path": path, "text": "1"})).status_code == 200
    found = await api.get(f"/v1/inspect/{image}/grep", params={"pattern": "root", "path": "/etc"})
    assert found.status_code == 200, found.text
    assert (await api.get(f"/v1/inspect/{image}/download", params={"path": "/etc/passwd"})).status_code == 200
    contained()


# nsswitch.conf: the attack (passwd) and the other database tarfile consults (group). The remaining
# cases pass on the old helper too (nothing in it called iconv or exec'd a binary): they pin that it stays so.
PLANTS = {
    "nss-passwd": "printf 'passwd: x files\\ngroup: files\\n' > /etc/nsswitch.conf",
    "nss-group": "printf 'passwd: files\\ngroup: x files\\n' > /etc/nsswitch.conf",
    "nss-every-database": "for db in passwd group shadow hosts services networks protocols; do"
                          " echo \"$db: x files\"; done > /etc/nsswitch.conf",
    "gconv": "mkdir -p /usr/lib/x86_64-linux-gnu/gconv && printf 'module INTERNAL X// X 1\\n"
             "module X// INTERNAL X 1\\nalias UTF-8// X//\\nalias ANSI_X3.4-1968// X//\\n'"
             " > /usr/lib/x86_64-linux-gnu/gconv/gconv-modules && mkdir -p /usr/lib/locale/C.UTF-8",
    "ld.so.preload": "echo /lib/x86_64-linux-gnu/libnss_x.so.2 > /etc/ld.so.preload",
}


@pytest.mark.parametrize("plant", list(PLANTS))
async def test_image_code_never_runs_in_an_inspect_helper(served_api: httpx.AsyncClient,
                                                         planted_library: tuple[bytes, Path], plant: str) -> None:
    api, (library, marker) = served_api, planted_library
    marker.unlink(missing_ok=True)  # one library (one marker path) serves the module's tests
    image = await _plant(api, library, PLANTS[plant])
    await _inspect_everything(api, image, marker)


async def test_archive_names_owners_from_the_images_own_files(served_api: httpx.AsyncClient,
                                                            planted_library: tuple[bytes, Path]) -> None:
    """Without NSS, names still come out right: parsed as text from the image's /etc/passwd and /etc/group."""
    api, (library, marker) = served_api, planted_library
    marker.unlink(missing_ok=True)  # one library (one marker path) serves the module's tests
    image = await _plant(api, library, PLANTS["nss-passwd"] + " && echo 'svc:x:4242:4343::/:/bin/sh' >> /etc/passwd"
                         " && echo 'svcgrp:x:4343:' >> /etc/group && mkdir /srv && touch /srv/f"
                         " && chown 4242:4343 /srv/f && touch /srv/g && chown 777:888 /srv/g")
    archive = await api.get(f"/v1/inspect/{image}/archive", params={"path": "/srv"})
    assert archive.status_code == 200, archive.text
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        owned = tar.getmember("srv/f")
        assert (owned.uid, owned.gid, owned.uname, owned.gname) == (4242, 4343, "svc", "svcgrp")
        unnamed = tar.getmember("srv/g")
        assert (unnamed.uid, unnamed.gid, unnamed.uname, unnamed.gname) == (777, 888, "", "")
        assert tar.getmember("srv").uname == "root"
    assert not marker.exists(), f"image code ran on the host: {marker.read_text()}"
