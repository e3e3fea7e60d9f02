"""`contree-tui export`: a snapshot made by a run, written in both formats, read back by the real skopeo and
umoci (files, owners, modes, hard links, symlinks, FIFOs, deleted files); and the failures a user meets
leave one error line and no file."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from contree_client.models import ImageImportRegistry
from contree_client.profiles import Profile

from contree_tui.client.connection import connect, embedded_target
from contree_tui.client.export_archive import ExportError, LayerSink
from contree_tui.client.image_export import default_name, split_name
from tests.client.conftest import FAST, TcpEngine
from tests.client.test_cli import Cli, one_error_line
from tests.client.test_profiles import write_auth_ini

WRITE_FILES = ("mkdir -p /data/private && echo hello > /data/a && ln /data/a /data/b && ln -s a /data/c"
               " && chown 1000:1001 /data/a && chmod 640 /data/a && mkfifo /data/fifo && chmod 700 /data/private"
               " && echo secret > /data/private/s && rm /bin/vi")


@pytest.fixture
def cli(engine_dir: Path, tmp_path: Path) -> Cli:
    return Cli(engine_dir, tmp_path / "project")


def skopeo(*args: str) -> dict:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if args[0] == "inspect" else {}


def unpack(source: str, work: Path) -> Path:
    """skopeo copy SOURCE to an OCI layout, umoci unpack it (as root: owners kept); the rootfs."""
    layout, bundle = work / "layout", work / "bundle"
    work.mkdir()
    skopeo("copy", "-q", source, f"oci:{layout}:exported")
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:exported", str(bundle)], check=True,
                   capture_output=True, timeout=120)
    return bundle / "rootfs"


def check_rootfs(rootfs: Path) -> None:
    a, b = (rootfs / "data/a").lstat(), (rootfs / "data/b").lstat()
    assert (rootfs / "data/a").read_text() == "hello\n"
    assert (a.st_uid, a.st_gid, stat.S_IMODE(a.st_mode)) == (1000, 1001, 0o640)
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2), "the hard link is one file"
    assert os.readlink(rootfs / "data/c") == "a"
    assert stat.S_ISFIFO((rootfs / "data/fifo").lstat().st_mode)
    assert stat.S_IMODE((rootfs / "data/private").lstat().st_mode) == 0o700
    assert (rootfs / "data/private/s").read_text() == "secret\n"
    assert not (rootfs / "bin/vi").exists() and not (rootfs / "bin/vi").is_symlink(), "deleted in the run"
    busybox = (rootfs / "bin/busybox").stat()
    assert busybox.st_size > 500_000 and busybox.st_mode & 0o111
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"


def test_both_formats_load_in_skopeo_and_umoci(cli: Cli, tmp_path: Path) -> None:
    cli("run", "--", WRITE_FILES)
    image = cli.json("use")["image"]  # type: ignore[index]
    oci, docker = tmp_path / "image.oci.tar", tmp_path / "image.docker.tar"
    done = cli("export", "@", "--format", "oci-archive", str(oci), "--name", "exported/app:v1")
    assert done.stdout == "" and f"{image[:8]} -> {oci}" in done.stderr
    assert "default PATH only" not in done.stderr, "the embedded engine says the env"
    cli("export", image[:8], "--format", "docker-archive", str(docker))
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("image")) == ["image.docker.tar", "image.oci.tar"]
    assert stat.S_IMODE(oci.stat().st_mode) == 0o666 & ~_umask()

    inspected = skopeo("inspect", f"oci-archive:{oci}")
    assert len(inspected["Layers"]) == 1 and inspected["Os"] == "linux"
    assert any(e.startswith("PATH=/usr/local/sbin") for e in inspected["Env"])
    docker_inspected = skopeo("inspect", f"docker-archive:{docker}")
    with tarfile.open(docker) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == [f"contree/{image.replace('-', '')[:12]}:latest"]
    # docker-archive stores the layer uncompressed: its digest is the diff id the oci config records
    config = skopeo("inspect", "--config", f"oci-archive:{oci}")
    assert docker_inspected["Layers"] == config["rootfs"]["diff_ids"]
    with tarfile.open(oci) as outer:
        index = json.load(outer.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"

    check_rootfs(unpack(f"oci-archive:{oci}", tmp_path / "from-oci"))
    check_rootfs(unpack(f"docker-archive:{docker}", tmp_path / "from-docker"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_bad_reference_or_destination_leaves_no_file(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cases = [
        (("export", "no-such-tag-anywhere", str(out / "x.tar")), "no image with a uuid (prefix) or tag"),
        (("export", "tag:busybox:latest", str(out)), "is a directory"),
        (("export", "tag:busybox:latest", str(out / "missing/x.tar")), "does not exist"),
        (("export", "tag:busybox:latest", "/proc/x.tar"), "cannot write in /proc"),
        (("export", "tag:busybox:latest", "--name", "Bad Name", str(out / "x.tar")), "not a Docker image name"),
    ]
    for args, expected in cases:
        done = cli(*args, ok=False)
        assert done.returncode == 1 and expected in one_error_line(done.stderr), (args, done.stderr)
    bad_format = cli("export", "tag:busybox:latest", "--format", "tarball", str(out / "x.tar"), ok=False)
    assert bad_format.returncode == 2 and "invalid choice" in bad_format.stderr
    assert os.listdir(out) == []


def test_ctrl_c_mid_export_leaves_no_file(cli: Cli, tmp_path: Path) -> None:
    cli("run", "--", "head -c 48000000 /dev/urandom > /big")
    out = tmp_path / "out"
    out.mkdir()
    proc = cli.popen("export", "@", str(out / "big.tar"))
    deadline = time.monotonic() + 30
    while not any(name.endswith(".partial") for name in os.listdir(out)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert os.listdir(out) == []


# -- the layer checks, on tars made here ------------------------------------------------------------------

def _tar(names: int = 3) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for i in range(names):
            data = f"file {i}\n".encode() * 100
            info = tarfile.TarInfo(f"./f{i}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("encoded", [False, True])
@pytest.mark.parametrize("want_gzip", [False, True])
def test_layer_sink_digests_and_truncation(encoded: bool, want_gzip: bool) -> None:
    import hashlib

    plain = _tar()
    body = gzip.compress(plain) if encoded else plain
    out = io.BytesIO()
    sink = LayerSink(out, gzip=want_gzip)
    for start in range(0, len(body), 1000):
        sink.feed(body[start:start + 1000])
    sink.finish()
    blob = out.getvalue()
    assert sink.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert sink.blob_digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert (gzip.decompress(blob) if want_gzip else blob) == plain

    cut = body[: len(body) - 1100] if not encoded else body[:-20]
    truncated = LayerSink(io.BytesIO(), gzip=want_gzip)
    truncated.feed(cut)
    with pytest.raises(ExportError, match="ended early"):
        truncated.finish()
    not_tar = LayerSink(io.BytesIO(), gzip=want_gzip)
    not_tar.feed(b"<html>" + bytes(4096))
    with pytest.raises(ExportError, match="not send a tar"):
        not_tar.finish()


def test_names() -> None:
    assert split_name("busybox") == ("busybox", "latest")
    assert split_name("registry.local:5000/team/app:dev") == ("registry.local:5000/team/app", "dev")
    assert default_name("0123456789ab-cdef", ("Not Valid", "app:1.0")) == "app:1.0"
    assert default_name("01234567-89ab-cdef-0000-000000000000", ()) == "contree/0123456789ab:latest"
    with pytest.raises(ExportError):
        split_name("UPPER:case")


# -- back in: the engine imports what export wrote ----------------------------------------------------------

ARCHIVES = importlib.util.find_spec("contree_tui.engine.image_sources.archives") is not None
CHECK = ("stat -c '%u:%g %a' /data/a; cat /data/b; readlink /data/c; test -p /data/fifo && echo fifo; "
         "test -e /bin/vi || echo no-vi; cat /data/private/s; echo $PATH")
EXPECTED = ("1000:1001 640\nhello\na\nfifo\nno-vi\nsecret\n"
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")


def import_back(engine_dir: Path, url: str, tag: str) -> None:
    async def go() -> None:
        connection = await connect(embedded_target(engine_dir), backoff=FAST)
        try:
            client = connection.client
            op = await client.import_image(ImageImportRegistry(url=url), tag=tag, timeout=120)
            done = await client.wait_operation(op, timeout=120)
            assert done.status.value == "SUCCESS", done.error
        finally:
            await connection.aclose()
    asyncio.run(go())


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_an_export_imports_back_and_runs(cli: Cli, engine_dir: Path, tmp_path: Path, fmt: str) -> None:
    cli("run", "--", WRITE_FILES)
    archive = tmp_path / f"image.{fmt}.tar"
    cli("export", "@", "--format", fmt, str(archive))
    # through an OCI layout dir (the engine's oci: source): skopeo turns either archive into one
    layout = tmp_path / "layout"
    skopeo("copy", "-q", f"{fmt}:{archive}", f"oci:{layout}:back")
    tag = f"exported-{fmt}:v1"
    import_back(engine_dir, f"oci:{layout}:back", tag)
    assert cli("run", "--image", f"tag:{tag}", "--", CHECK).stdout == EXPECTED
    if ARCHIVES:  # the archive itself, once the engine reads archives directly
        import_back(engine_dir, f"{fmt}:{archive}", f"direct-{tag}")
        assert cli("run", "--image", f"tag:direct-{tag}", "--", CHECK).stdout == EXPECTED


def test_podman_loads_both_formats(cli: Cli, tmp_path: Path) -> None:
    """`podman load` (what users run; Docker's daemon cannot run on this machine) takes both archives, under
    the name given, with the one layer; in a storage root of the test's own."""
    cli("run", "--", WRITE_FILES)
    short = Path(tempfile.mkdtemp(prefix="ctpod-"))  # podman wants a runroot under 50 characters
    podman = ["podman", "--root", str(tmp_path / "root"), "--runroot", str(short), "--storage-driver", "vfs"]
    for fmt, name in (("oci-archive", "loaded/oci:v1"), ("docker-archive", "loaded/docker:v1")):
        archive = tmp_path / f"{fmt}.tar"
        cli("export", "@", "--format", fmt, str(archive), "--name", name)
        loaded = subprocess.run([*podman, "load", "-i", str(archive)], capture_output=True, text=True, timeout=120)
        assert loaded.returncode == 0 and name in loaded.stdout, loaded.stderr
        image = loaded.stdout.strip().rsplit("Loaded image: ", 1)[-1].strip()
        inspected = subprocess.run([*podman, "image", "inspect", image], capture_output=True, text=True,
                                   timeout=60, check=True)
        info = json.loads(inspected.stdout)[0]
        assert len(info["RootFS"]["Layers"]) == 1 and info["Os"] == "linux"
        assert any(e.startswith("PATH=") for e in info["Config"]["Env"])
    subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True, timeout=120, check=False)
    shutil.rmtree(short, ignore_errors=True)


async def test_export_from_a_profile_over_tcp_reuses_the_servers_gzip(tcp_engine: TcpEngine, clean_env: Path,
                                                                      tmp_path: Path) -> None:
    """A Contree reached by URL and token (as a hosted one is): the archive comes gzip-encoded and is the
    oci-archive's layer as it came; the result unpacks the same."""
    await tcp_engine.start()
    write_auth_ini(clean_env, [Profile(name="remote", url=tcp_engine.url, token=tcp_engine.token)])
    cli = Cli(tcp_engine.state_dir, tmp_path / "project")
    await asyncio.to_thread(cli, "run", "--profile", "remote", "--", WRITE_FILES)
    out = tmp_path / "remote.tar"
    done = await asyncio.to_thread(cli, "export", "--profile", "remote", "@", str(out))
    assert "oci-archive" in done.stderr
    with tarfile.open(out) as outer:
        index = json.load(outer.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(outer.extractfile(f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"))  # type: ignore[arg-type]
        layer = outer.extractfile(f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}").read()  # type: ignore[union-attr]
    image = (await asyncio.to_thread(cli.json, "use", "--profile", "remote"))["image"]  # type: ignore[index]
    headers = {"Authorization": f"Bearer {tcp_engine.token}", "Accept-Encoding": "gzip"}
    async with (httpx.AsyncClient(base_url=tcp_engine.url, headers=headers) as http,
                http.stream("GET", f"/v1/inspect/{image}/archive", params={"path": "/"}) as served):
        assert served.headers["content-encoding"] == "gzip"
        raw = b"".join([chunk async for chunk in served.aiter_raw()])
    assert layer == raw, "the layer is the server's gzip bytes, as they came"
    assert gzip.decompress(layer)[257:262] == b"ustar"
    check_rootfs(await asyncio.to_thread(unpack, f"oci-archive:{out}", tmp_path / "unpacked"))


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    from contree_tui.client.progress import ByteProgress

    clock = [100.0]
    terminal = io.StringIO()
    bar = ByteProgress(terminal, "exporting 3f2a9c1e", terminal=True, clock=lambda: clock[0])
    for done in (0, 5 << 20, 10 << 20):
        clock[0] += 1
        bar.update(done, 20 << 20)
    bar.finish()
    frames = terminal.getvalue().split("\r")
    assert frames[-2] == "\x1b[Kexporting 3f2a9c1e  [========>       ]   50%  10.0 MiB of ~20.0 MiB  3.3 MiB/s"
    assert frames[-1] == "\x1b[K" and "\n" not in terminal.getvalue(), "redrawn in place, then erased"

    log = io.StringIO()
    lines = ByteProgress(log, "exporting 3f2a9c1e", terminal=False, clock=lambda: clock[0])
    for second in range(12):
        clock[0] += 1
        lines.update(second << 20)
    lines.finish()
    # one line each LINE_EVERY (5 s), none at the start: 4 MiB after 5 s, 9 MiB after 10 s
    assert log.getvalue().splitlines() == ["contree-tui: exporting 3f2a9c1e  4.0 MiB  819.2 KiB/s",
                                           "contree-tui: exporting 3f2a9c1e  9.0 MiB  921.6 KiB/s"]
