"""Issue #10: a rootfs tarball is image content, so hostile. Before, the engine forked a child that chrooted
into the new layer as full root (every capability: a chroot is no wall for root, sandbox-runtime.md §1.2)
and ran tarfile on the tarball with no size limit and no deadline (the engine waited in a thread forever).
Now a confined helper extracts it (rootfs_import.py). Each test runs a real engine:

- escapes (an absolute symlink then a file through it, `../` names, a hard link and a symlink to a host
  file then a file written over them) change nothing outside the layer;
- a tarball holding more than max_layer_bytes, and a 2 GiB gzip bomb under a 100 MiB limit, are refused
  with a clear error, no layer and no leftovers, while the engine keeps answering (failed before: both
  were extracted in full);
- a tarball whose extraction outlives the import deadline is killed with a clear error (failed before:
  no deadline existed);
- a probe in the very helper an import uses holds only the four capabilities extraction needs, as an
  unprivileged uid, with no_new_privs, no host path, FSIZE enforced (failed before: uid 0, all capabilities).
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import io
import os
import resource
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import EngineError, Image
from contree_tui.engine.rootfs_import import EXTRACT_CAPABILITIES
from contree_tui.engine.sandbox import credentials
from contree_tui.engine.sandbox.helper import INPUT_FD, HelperLimits, HelperOutput
from tests.security.probing import open_fd_kinds

BOMB_BYTES = 2 << 30


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, io.BytesIO(data)


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _write(path: Path, members: list[tuple[tarfile.TarInfo, io.BytesIO | None]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for info, data in members:
            archive.addfile(info, data)
    return path


def _snapshot(root: Path) -> dict[str, Any]:
    return {str(p): (p.lstat().st_mode, p.lstat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
            for p in [root, *root.rglob("*")]}


def _leftovers(engine: Engine) -> list[str]:
    return [p.name for p in engine.state.runs.iterdir()]


@pytest.fixture
def host_dir(tmp_path: Path) -> Iterator[Path]:
    """A host directory the tarballs aim at, with a file in it; the test checks it never changes."""
    target = tmp_path / "host-dir"
    target.mkdir()
    (target / "victim").write_bytes(b"host data\n")
    before = _snapshot(target)
    yield target
    assert _snapshot(target) == before, "a tarball changed a host directory"


def _escapes(host: Path) -> dict[str, list[tuple[tarfile.TarInfo, io.BytesIO | None]]]:
    victim = str(host / "victim")
    return {
        # etc -> /host-dir, then etc/x: tarfile would create x through the link
        "symlinked-dir": [_link("etc", str(host), tarfile.SYMTYPE), _file("etc/x", b"planted\n")],
        # names that climb out of the destination
        "dot-dot": [_file("../" * 16 + str(host)[1:] + "/x", b"planted\n"), _file("a/../../../x", b"planted\n")],
        # a hard link to a host file (and to /etc/shadow), then a member written over it: truncates the inode
        "hard-link": [_link("shadow", "/etc/shadow", tarfile.LNKTYPE), _link("victim", victim, tarfile.LNKTYPE),
                      _file("victim", b"overwritten\n"), _file("shadow", b"overwritten\n")],
        # a symlink to a host file, then a regular member of the same name: opened "wb" through the link
        "symlinked-file": [_link("victim", victim, tarfile.SYMTYPE), _file("victim", b"overwritten\n")],
    }


@pytest.mark.parametrize("attack", ["symlinked-dir", "dot-dot", "hard-link", "symlinked-file"])
async def test_escapes_stay_inside_the_layer(engine: Engine, tmp_path: Path, host_dir: Path, attack: str) -> None:
    shadow = Path("/etc/shadow").read_bytes()
    tar = _write(tmp_path / f"{attack}.tar", _escapes(host_dir)[attack])
    try:
        image = await engine.import_rootfs(tar)
    except EngineError as exc:
        assert "Traceback" not in str(exc) and str(tar) in str(exc) and exc.status == 422, exc  # its answer
        assert _leftovers(engine) == [] and list(engine.state.layers.iterdir()) == []
    else:
        layer = Path(engine.layer_path(image.layers[0]))
        planted = [p for p in layer.rglob("*") if p.is_file() and not p.is_symlink()
                   and p.read_bytes() in (b"planted\n", b"overwritten\n")]
        assert planted, "the members landed nowhere"  # they landed inside the layer, or were refused above
    assert Path("/etc/shadow").read_bytes() == shadow


async def test_files_over_the_layer_limit_are_refused(open_engine: Any, tmp_path: Path) -> None:
    engine: Engine = await open_engine(EngineConfig(max_layer_bytes=1 << 20))
    tar = _write(tmp_path / "big.tar", [_file("small", b"x" * 1000), _file("big", b"\0" * (2 << 20))])
    with pytest.raises(EngineError, match="more than the 1 MiB a layer may hold") as caught:
        await engine.import_rootfs(tar)
    assert caught.value.status == 422
    assert _leftovers(engine) == [] and list(engine.state.layers.iterdir()) == []
    assert engine.store.list_images() == []


@pytest.fixture(scope="session")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 MB .tar.gz holding one 2 GiB file of zeros. Made as concatenated gzip members (one 16 MiB block
    of zeros compressed once, repeated), which gzip readers decompress as one stream: ~0.1 s instead of ~12."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.tar.gz"
    info = tarfile.TarInfo("zeros")
    info.size = BOMB_BYTES
    block = 16 << 20
    zeros = gzip.compress(bytes(block), compresslevel=9)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(info.tobuf(tarfile.GNU_FORMAT)))
        for _ in range(BOMB_BYTES // block):
            fh.write(zeros)
        fh.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE)))  # the end-of-archive marker
    assert path.stat().st_size < 8 << 20
    return path


async def _loop_lag_while(task: asyncio.Task[Any], engine: Engine, busybox: Image) -> tuple[float, int]:
    """The event loop's worst lag, and how many cheap engine calls answered, while `task` runs."""
    worst, answered = 0.0, 0
    while not task.done():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, time.perf_counter() - start - 0.01)
        listing = await engine.list_directory(busybox, "/")
        assert listing
        answered += 1
    return worst, answered


async def test_a_decompression_bomb_is_refused(open_engine: Any, bomb: Path) -> None:
    engine: Engine = await open_engine(EngineConfig(max_layer_bytes=100 << 20))
    start = time.perf_counter()
    with pytest.raises(EngineError, match="more than the 100 MiB a layer may hold") as caught:
        await engine.import_rootfs(bomb)
    # refused at the bomb's first header: nothing decompressed past it, nothing written
    assert time.perf_counter() - start < 2.0 and caught.value.status == 422
    assert _leftovers(engine) == [] and list(engine.state.layers.iterdir()) == []
    assert len(engine.importers) == 0


async def test_an_import_past_its_deadline_is_killed_while_the_engine_answers(open_engine: Any, bomb: Path) -> None:
    # No size limit in the way: only the deadline stops it (the bomb takes ~15 s of a core to scan).
    engine: Engine = await open_engine(EngineConfig(import_timeout=1.0, max_layer_bytes=4 << 30))
    busybox = await engine.ensure_busybox()
    layers_before = set(os.listdir(engine.state.layers))
    start = time.perf_counter()
    task = asyncio.create_task(engine.import_rootfs(bomb))
    worst, answered = await _loop_lag_while(task, engine, busybox)
    with pytest.raises(EngineError, match=r"did not finish within 1 s and was stopped") as caught:
        await task
    assert caught.value.status == 504 and "Traceback" not in str(caught.value)
    assert time.perf_counter() - start < 4.0
    assert answered >= 3 and worst < 0.2, (worst, answered)  # cheap calls answered throughout
    assert _leftovers(engine) == [] and set(os.listdir(engine.state.layers)) == layers_before
    assert len(engine.importers) == 0


def probe(out: HelperOutput, file_bytes: int) -> None:  # pragma: no cover - runs in the helper
    effective, permitted, inheritable = credentials.capabilities()
    fds = open_fd_kinds()

    def attempt(action: Any) -> str:
        try:
            action()
        except OSError as exc:
            return f"refused: {errno.errorcode.get(exc.errno or 0, exc.errno)}"
        return "allowed"

    def write_past_limit() -> None:
        with open("/big", "wb") as fh:
            fh.write(b"\0" * (file_bytes + 4096))

    flags = os.statvfs("/").f_flag
    report = {
        "uid": os.getuid(), "euid": os.geteuid(), "pid": os.getpid(),
        "caps": [effective, permitted, inheritable], "bounding": credentials.bounding_set(),
        "no_new_privs": credentials.no_new_privs(),
        "root_entries": sorted(os.listdir("/")),
        "input": os.read(INPUT_FD, 100).decode(),
        "fd_kinds": {fd: kind for fd, kind in fds.items()},
        "mount_flags": {"nosuid": bool(flags & os.ST_NOSUID), "nodev": bool(flags & os.ST_NODEV),
                        "noexec": bool(flags & os.ST_NOEXEC), "rdonly": bool(flags & os.ST_RDONLY)},
        "write_past_fsize": attempt(write_past_limit),
        "input_fchmod": attempt(lambda: os.fchmod(INPUT_FD, 0o777)),
        "input_fchown": attempt(lambda: os.fchown(INPUT_FD, 0, 0)),
        "input_write": attempt(lambda: os.write(INPUT_FD, b"x")),
        "chown": attempt(lambda: (open("/owned", "w").close(), os.chown("/owned", 123, 456))),
        "mknod_char": attempt(lambda: os.mknod("/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))),
        "mkfifo": attempt(lambda: os.mkfifo("/fifo")),
        "chroot": attempt(lambda: os.chroot("/")),
        "fork": attempt(lambda: os.waitpid(pid, 0) if (pid := os.fork()) else os._exit(0)),
        "setuid_other": attempt(lambda: os.setuid(1)),
        "rlimits": {name: resource.getrlimit(getattr(resource, name))[0]
                    for name in ("RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_CPU")},
    }
    out.header(report=report)


async def test_the_extraction_helper_holds_only_what_extraction_needs(engine: Engine, tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    layer.mkdir()
    source = tmp_path / "input"
    source.write_bytes(b"the tarball's bytes")
    source.chmod(0o644)
    file_bytes = 1 << 20
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        helper = await engine.importers.start_writable(
            str(layer), lambda out: probe(out, file_bytes), HelperLimits(lifetime=20, file_bytes=file_bytes),
            capabilities=EXTRACT_CAPABILITIES, input_fd=fd)
    finally:
        os.close(fd)
    report = (await helper.header(15))["report"]
    helper.close()
    await helper.exit_code()
    chosen = sum(1 << cap for cap in EXTRACT_CAPABILITIES)
    assert chosen == 0b11011 | 1 << 31  # CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETFCAP (file capabilities)
    # root of the sandboxes' user namespace (host uid BASE), its capabilities held there only
    assert (report["uid"], report["euid"], report["pid"]) == (0, 0, 1)
    assert report["caps"] == [chosen, chosen, 0] and report["bounding"] == chosen and report["no_new_privs"]
    assert report["root_entries"] == []  # its root is the empty layer: no host path at all
    assert report["input"] == "the tarball's bytes"  # handed in as an open fd
    assert set(report["fd_kinds"]) == {"0", "1", "2", "3", "4"}  # JSON keys: stdio, the pipe, the input
    assert report["mount_flags"] == {"nosuid": True, "nodev": True, "noexec": True, "rdonly": False}
    assert report["write_past_fsize"] == "refused: EFBIG"
    # the tarball's fd is on a read-only mount of its own: CAP_FOWNER/CAP_CHOWN cannot change the host file
    assert report["input_fchmod"] == report["input_fchown"] == "refused: EROFS"
    assert report["input_write"].startswith("refused")
    assert stat.S_IMODE(source.stat().st_mode) == 0o644 and source.stat().st_uid == 0
    assert report["chown"] == "allowed" and report["mkfifo"] == "allowed"
    for door in ("mknod_char", "chroot", "fork", "setuid_other"):
        assert report[door].startswith("refused"), (door, report[door])
    assert report["rlimits"]["RLIMIT_FSIZE"] == file_bytes and report["rlimits"]["RLIMIT_NPROC"] == 0
    # what it wrote is in the layer on the host, owned as it chose: canonical ids through the idmapped root
    assert (layer / "owned").stat().st_uid == 123 and (layer / "owned").stat().st_gid == 456
    assert (layer / "fifo").stat().st_uid == 0 and (layer / "fifo").is_fifo()
    assert (layer / "big").stat().st_size <= file_bytes and not (layer / "null").exists()


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
async def test_what_a_rootfs_needs_survives_the_confinement(engine: Engine, tmp_path: Path,
                                                            compression: str) -> None:
    """Each decompressor (imported before the helper refuses imports), numeric owners (no name looked up),
    a setgid file of a group the helper is not in (FSETID), a 0555 directory filled after it is made
    (DAC_OVERRIDE), a hard link to a root-owned file (FOWNER under fs.protected_hardlinks)."""
    path = tmp_path / f"rootfs.tar{'.' + compression if compression else ''}"
    tool, tool_data = _file("usr/bin/tool", b"#!/bin/sh\n", 0o2755)
    tool.uid, tool.gid, tool.uname, tool.gname = 0, 42, "nobody-here", "no-such-group"
    locked = tarfile.TarInfo("locked")
    locked.type, locked.mode = tarfile.DIRTYPE, 0o555
    inside, inside_data = _file("locked/file", b"in a 0555 dir\n", 0o600)
    inside.uid = inside.gid = 1000
    with tarfile.open(path, f"w:{compression}") as archive:
        archive.addfile(tool, tool_data)
        archive.addfile(locked)
        archive.addfile(inside, inside_data)
        link = _link("usr/bin/tool-link", "usr/bin/tool", tarfile.LNKTYPE)[0]
        link.uid, link.gid, link.mode = tool.uid, tool.gid, tool.mode  # as tar writes a link's header
        archive.addfile(link)
    image = await engine.import_rootfs(path)
    layer = Path(engine.layer_path(image.layers[0]))
    st = (layer / "usr/bin/tool").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 42, 0o2755)
    assert st.st_nlink == 2 and (layer / "usr/bin/tool-link").stat().st_ino == st.st_ino
    assert stat.S_IMODE((layer / "locked").stat().st_mode) == 0o555
    st = (layer / "locked/file").stat()
    assert (st.st_uid, st.st_gid, (layer / "locked/file").read_bytes()) == (1000, 1000, b"in a 0555 dir\n")


@pytest.mark.parametrize("owner", ["uid", "gid"])
async def test_an_owner_the_sandboxes_cannot_map_is_refused(engine: Engine, tmp_path: Path, owner: str) -> None:
    """The extracting helper is the sandboxes' root: it can chown to 0..65535 only. A member owned by
    70000 is refused with a 422 naming it, like a run asking for uid 70000, not left owned by root
    (tarfile only logs a failed chown). 65535, the last mapped id, lands on disk as 65535."""
    kept, kept_data = _file("kept", b"k")
    kept.uid = kept.gid = 65535
    far, far_data = _file("far", b"x")
    setattr(far, owner, 70000)
    image = await engine.import_rootfs(_write(tmp_path / "kept.tar", [(kept, kept_data)]))
    st = (Path(engine.layer_path(image.layers[0])) / "kept").stat()
    assert (st.st_uid, st.st_gid) == (65535, 65535)
    with pytest.raises(EngineError, match=r"'far' is owned by .*70000.*0\.\.65535 only") as caught:
        await engine.import_rootfs(_write(tmp_path / "far.tar", [(kept, io.BytesIO(b"k")), (far, far_data)]))
    assert caught.value.status == 422
    assert _leftovers(engine) == [] and len(list(engine.state.layers.iterdir())) == 1
