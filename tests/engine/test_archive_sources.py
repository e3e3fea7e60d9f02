"""docker-archive: and oci-archive: sources, on archives skopeo writes from layouts the tests build: resolve,
fetch every blob, check digests and the config; references naming one of several images; damaged, lying and
hostile archives refused with a clear error. The archives' tar structure is read by a real confined helper."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.image_sources import open_source
from contree_tui.engine.image_sources.archives import DockerArchiveSource, OciArchiveSource, normalize_name
from contree_tui.engine.image_sources.base import ImageSource, ResolvedImage
from contree_tui.engine.image_sources.tar_members import TarIndexer, parse_index
from contree_tui.engine.models import EngineError, NotFound, Unprocessable
from tests.images.oci_build import (
    DIR,
    OCI_CONFIG,
    OCI_MANIFEST,
    OPAQUE,
    WHITEOUT,
    Built,
    Symlink,
    _put_blob,
    _write_index,
    host_arch,
    layer_tar,
    skopeo_copy,
    write_layout,
    write_multiplatform,
)

BASE = {"etc": DIR, "etc/a": b"from base\n", "etc/gone": b"deleted later\n", "opt": DIR, "opt/old": b"old\n",
        "bin": DIR, "bin/link": Symlink("/etc/a")}
TOP = {"etc/gone": WHITEOUT, "opt": OPAQUE, "opt/new": b"new\n", "etc/a": b"changed\n"}


def indexer(engine: Engine) -> TarIndexer:
    return TarIndexer(engine.helpers, engine._inspect_root)


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


async def resolve_and_fetch(source: ImageSource, tmp: Path) -> tuple[ResolvedImage, list[Path]]:
    """Resolve, then fetch every layer into tmp (checking progress reaches the size); closes the source."""
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        image = await source.resolve()
        paths = []
        for n, layer in enumerate(image.layers):
            dest = tmp / f"blob-{n}"
            seen: list[int] = []
            await source.fetch_blob(layer, dest, seen.append)
            assert seen == sorted(seen) and seen[-1] == layer.size == dest.stat().st_size
            assert sha256(dest) == layer.digest
            paths.append(dest)
        return image, paths
    finally:
        await source.aclose()


async def resolve_only(source: ImageSource) -> ResolvedImage:
    try:
        return await source.resolve()
    finally:
        await source.aclose()


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Built]:
    built = write_layout(tmp_path / "layout", [BASE, TOP], tag="t1", env=["A=1", "PATH=/bin"], workdir="/opt")
    return tmp_path / "layout", built


async def test_docker_archive_from_skopeo(engine: Engine, layout: tuple[Path, Built], tmp_path: Path) -> None:
    path, built = layout
    archive = tmp_path / "image.tar"
    skopeo_copy(f"oci:{path}:t1", f"docker-archive:{archive}:example.com/team/app:v1")
    source = open_source(f"docker-archive:{archive}", indexer=indexer(engine))
    image, blobs = await resolve_and_fetch(source, tmp_path)
    assert image.config["config"]["Env"] == ["A=1", "PATH=/bin"]
    assert image.config["config"]["WorkingDir"] == "/opt"
    # skopeo stores layers uncompressed: each blob is the layer tar itself, so its digest is the diff id
    assert [layer.diff_id for layer in image.layers] == built.diff_ids
    assert [layer.digest for layer in image.layers] == built.diff_ids
    assert image.source_digest == built.config_digest
    assert image.reference == f"docker-archive:{archive}"
    with tarfile.open(blobs[1]) as tar:
        assert tar.extractfile("opt/new").read() == b"new\n"  # type: ignore[union-attr]
        assert "etc/.wh.gone" in tar.getnames()


async def test_oci_archive_from_skopeo(engine: Engine, layout: tuple[Path, Built], tmp_path: Path) -> None:
    path, built = layout
    archive = tmp_path / "image.tar"
    skopeo_copy(f"oci:{path}:t1", f"oci-archive:{archive}:release")
    source = open_source(f"oci-archive:{archive}:release", indexer=indexer(engine))
    image, _ = await resolve_and_fetch(source, tmp_path)
    assert image.source_digest == built.manifest_digest  # skopeo copies an OCI manifest byte for byte
    assert [layer.digest for layer in image.layers] == built.layer_digests  # gzip blobs, as built
    assert [layer.diff_id for layer in image.layers] == built.diff_ids
    assert image.layers[0].media_type.endswith("+gzip")
    assert image.config["config"]["Env"] == ["A=1", "PATH=/bin"]
    # its only image is found without naming it
    again = await resolve_only(open_source(f"oci-archive:{archive}", indexer=indexer(engine)))
    assert again.source_digest == image.source_digest


def test_references_are_checked_before_any_io() -> None:
    with pytest.raises(EngineError) as info:
        DockerArchiveSource("/x.tar:busybox@sha256:" + "a" * 64)
    assert info.value.status == 400 and "digest" in str(info.value)
    with pytest.raises(EngineError):
        DockerArchiveSource("/x.tar:UPPER/case")
    with pytest.raises(EngineError):
        OciArchiveSource("/x.tar:bad name")
    with pytest.raises(EngineError):
        OciArchiveSource(":ref")
    with pytest.raises(EngineError) as relative:
        DockerArchiveSource("images/x.tar")  # the engine's working directory is not the client's
    assert relative.value.status == 400 and "must be absolute" in str(relative.value)
    assert normalize_name("busybox") == "docker.io/library/busybox:latest"
    assert normalize_name("docker.io/foo/bar:t1") == "docker.io/foo/bar:t1"
    assert normalize_name("foo/bar:t1") == "docker.io/foo/bar:t1"
    assert normalize_name("localhost:5000/a:b") == "localhost:5000/a:b"
    assert normalize_name("127.0.0.1:5000/a/b") == "127.0.0.1:5000/a/b:latest"


# -- archives written by hand: several images, Docker 25's layout, legacy names, damage ----------------

def tar_of(out: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A plain tar with these regular files (in this order) and symlinks."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out


def members_of(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}  # type: ignore[union-attr]


def layout_members(layout: Path) -> dict[str, bytes]:
    return {str(p.relative_to(layout)): p.read_bytes() for p in sorted(layout.rglob("*")) if p.is_file()}


def docker_archive(tmp: Path, name: str, layers: list[dict], tag: str, **kwargs: object) -> tuple[Path, Built]:
    built = write_layout(tmp / f"layout-{name}", layers, tag="t", **kwargs)  # type: ignore[arg-type]
    out = tmp / f"{name}.tar"
    skopeo_copy(f"oci:{tmp / f'layout-{name}'}:t", f"docker-archive:{out}:{tag}")
    return out, built


async def test_docker_archive_with_several_images_needs_a_name(engine: Engine, tmp_path: Path) -> None:
    first, built_a = docker_archive(tmp_path, "a", [BASE], "busybox:latest", env=["WHO=a"])
    second, built_b = docker_archive(tmp_path, "b", [BASE, TOP], "127.0.0.1:5000/team/b:v2", env=["WHO=b"])
    a, b = members_of(first), members_of(second)
    entries = json.loads(a.pop("manifest.json")) + json.loads(b.pop("manifest.json"))
    entries[0]["RepoTags"] = ["busybox:latest"]  # as `docker save` writes Docker Hub names: familiar
    both = tar_of(tmp_path / "both.tar", {**a, **b, "manifest.json": json.dumps(entries).encode()})
    idx = indexer(engine)

    with pytest.raises(EngineError) as info:
        await resolve_only(DockerArchiveSource(str(both), indexer=idx))
    assert info.value.status == 400 and "holds 2 images" in str(info.value) and "busybox:latest" in str(info.value)
    for ref, who, built in (("busybox", "a", built_a), ("docker.io/library/busybox:latest", "a", built_a),
                            ("127.0.0.1:5000/team/b:v2", "b", built_b), ("@1", "b", built_b), ("@0", "a", built_a)):
        source = DockerArchiveSource(f"{both}:{ref}", indexer=idx)
        image, _ = await resolve_and_fetch(source, tmp_path / ref.replace("/", "_"))
        assert image.config["config"]["Env"] == [f"WHO={who}"], ref
        assert [layer.diff_id for layer in image.layers] == built.diff_ids
    for ref in ("busybox:other", "team/b:v2", "@2"):
        with pytest.raises(NotFound) as missing:
            await resolve_only(DockerArchiveSource(f"{both}:{ref}", indexer=idx))
        assert "@0: busybox:latest; @1: 127.0.0.1:5000/team/b:v2" in str(missing.value)


async def test_oci_archive_with_several_images_needs_a_name(engine: Engine, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    one = write_layout(layout, [BASE], tag="one", env=["WHO=one"])
    two = write_layout(layout, [BASE, TOP], tag="two", env=["WHO=two"])
    archive = tar_of(tmp_path / "layout.tar", layout_members(layout))  # an oci-archive: a tar of the layout
    idx = indexer(engine)
    with pytest.raises(EngineError) as info:
        await resolve_only(OciArchiveSource(str(archive), indexer=idx))
    assert info.value.status == 400 and "'one', 'two'" in str(info.value)
    for ref, built in (("one", one), ("two", two), ("@1", two)):
        image, _ = await resolve_and_fetch(OciArchiveSource(f"{archive}:{ref}", indexer=idx), tmp_path / ref)
        assert image.source_digest == built.manifest_digest
        assert image.config["config"]["Env"] == [f"WHO={'one' if built is one else 'two'}"]
    for ref in ("three", "@2"):
        with pytest.raises(NotFound):
            await resolve_only(OciArchiveSource(f"{archive}:{ref}", indexer=idx))


async def test_multiplatform_index_resolves_to_this_machine(engine: Engine, tmp_path: Path) -> None:
    other = "s390x" if host_arch() != "s390x" else "amd64"
    digest, builts = write_multiplatform(tmp_path / "layout", {other: [BASE], host_arch(): [BASE, TOP]}, tag="m")
    archive = tmp_path / "multi.tar"
    skopeo_copy(f"oci:{tmp_path / 'layout'}:m", f"oci-archive:{archive}:m", "--all")
    image, _ = await resolve_and_fetch(OciArchiveSource(str(archive), indexer=indexer(engine)), tmp_path)
    assert image.platform.startswith(f"linux/{host_arch()}")
    assert image.source_digest == builts[host_arch()].manifest_digest
    assert image.extra["index_digest"] == digest
    assert [layer.digest for layer in image.layers] == builts[host_arch()].layer_digests

    write_multiplatform(tmp_path / "foreign", {other: [BASE]}, tag="m")
    foreign = tar_of(tmp_path / "foreign.tar", layout_members(tmp_path / "foreign"))
    with pytest.raises(Unprocessable) as info:
        await resolve_only(OciArchiveSource(str(foreign), indexer=indexer(engine)))
    assert f"linux/{other}" in str(info.value) and "no image for this host's platform" in str(info.value)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
async def test_docker_25_archive_layout_with_compressed_layers(engine: Engine, tmp_path: Path,
                                                               compression: str) -> None:
    """Docker 25+ saves an OCI layout plus manifest.json naming blobs/sha256/<hex>; layers may be compressed
    (gzip, or zstd from a containerd store)."""
    built = write_layout(tmp_path / "layout", [BASE, TOP], tag="t", env=["DOCKER=25"], compression=compression)
    members = layout_members(tmp_path / "layout")
    manifest = [{"Config": f"blobs/sha256/{built.config_digest[7:]}", "RepoTags": ["app:1"],
                 "Layers": [f"blobs/sha256/{d[7:]}" for d in built.layer_digests]}]
    archive = tar_of(tmp_path / "saved.tar", {**members, "manifest.json": json.dumps(manifest).encode()})
    image, _ = await resolve_and_fetch(DockerArchiveSource(f"{archive}:app:1", indexer=indexer(engine)), tmp_path)
    assert [layer.digest for layer in image.layers] == built.layer_digests
    assert [layer.diff_id for layer in image.layers] == built.diff_ids
    assert all(layer.media_type.endswith(f"+{compression}") for layer in image.layers)
    assert image.config["config"]["Env"] == ["DOCKER=25"]
    # and the same file read as what it also is, an OCI layout
    oci = await resolve_only(OciArchiveSource(f"{archive}:t", indexer=indexer(engine)))
    assert oci.source_digest == built.manifest_digest


async def test_legacy_layer_names_and_links_inside_the_archive(engine: Engine, layout: tuple[Path, Built],
                                                               tmp_path: Path) -> None:
    """Docker before 25 names layers `<v1 id>/layer.tar`, some of them symlinks to another's: followed inside
    the archive, never on the host."""
    path, built = layout
    skopeo_copy(f"oci:{path}:t1", f"docker-archive:{tmp_path / 'a.tar'}")
    members = members_of(tmp_path / "a.tar")
    entry = json.loads(members["manifest.json"])[0]
    hexes = [d[7:] for d in built.diff_ids]
    legacy = {"manifest.json": json.dumps([{**entry, "Layers": ["v1a/layer.tar", "v1b/layer.tar"]}]).encode(),
              entry["Config"]: members[entry["Config"]], "v1a/layer.tar": members[f"{hexes[0]}.tar"],
              "store/top.tar": members[f"{hexes[1]}.tar"]}
    archive = tar_of(tmp_path / "legacy.tar", legacy, links={"v1b/layer.tar": "../store/./top.tar"})
    image, _ = await resolve_and_fetch(DockerArchiveSource(str(archive), indexer=indexer(engine)), tmp_path)
    assert [layer.digest for layer in image.layers] == built.diff_ids


async def test_member_names_are_keys_never_host_paths(engine: Engine, layout: tuple[Path, Built],
                                                      tmp_path: Path) -> None:
    path, _ = layout
    skopeo_copy(f"oci:{path}:t1", f"docker-archive:{tmp_path / 'a.tar'}")
    members = members_of(tmp_path / "a.tar")
    entry = json.loads(members["manifest.json"])[0]
    config = members.pop(entry["Config"])
    hostile = {**members, "../../../../etc/passwd": config,
               "manifest.json": json.dumps([{**entry, "Config": "../../../../etc/passwd"}]).encode()}
    archive = tar_of(tmp_path / "names.tar", hostile)
    image = await resolve_only(DockerArchiveSource(str(archive), indexer=indexer(engine)))
    assert image.config["config"]["Env"] == ["A=1", "PATH=/bin"]  # the archive's member, not the host's file
    absent = {**hostile, "manifest.json": json.dumps([{**entry, "Config": "/etc/hostname"}]).encode()}
    with pytest.raises(Unprocessable) as info:
        await resolve_only(DockerArchiveSource(str(tar_of(tmp_path / "abs.tar", absent)), indexer=indexer(engine)))
    assert "'/etc/hostname' is not in the archive" in str(info.value)


async def test_a_lying_diff_id_cannot_pass_as_the_layer(engine: Engine, layout: tuple[Path, Built],
                                                        tmp_path: Path) -> None:
    """The store keys layers by diff id: an archive whose config claims another layer's diff id (to have its
    content reused as that layer later) fails the copy, since an uncompressed layer's digest is its diff id."""
    path, _ = layout
    skopeo_copy(f"oci:{path}:t1", f"docker-archive:{tmp_path / 'a.tar'}")
    members = members_of(tmp_path / "a.tar")
    entry = json.loads(members["manifest.json"])[0]
    config = json.loads(members.pop(entry["Config"]))
    config["rootfs"]["diff_ids"][1] = "sha256:" + "5" * 64  # the diff id of some popular base layer
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    members.update({config_name: config_bytes,
                    "manifest.json": json.dumps([{**entry, "Config": config_name}]).encode()})
    archive = tar_of(tmp_path / "lying.tar", members)
    source = DockerArchiveSource(str(archive), indexer=indexer(engine))
    try:
        image = await source.resolve()
        await source.fetch_blob(image.layers[0], tmp_path / "ok", lambda _: None)
        with pytest.raises(Unprocessable) as info:
            await source.fetch_blob(image.layers[1], tmp_path / "bad", lambda _: None)
        assert "does not match its digest" in str(info.value)
    finally:
        await source.aclose()
    # a config whose content does not match the digest its name states is refused at once
    members[config_name] = config_bytes.replace(b"A=1", b"A=2")
    with pytest.raises(Unprocessable) as info:
        await resolve_only(DockerArchiveSource(str(tar_of(tmp_path / "cfg.tar", members)), indexer=indexer(engine)))
    assert "does not match the digest in its name" in str(info.value)


@pytest.mark.parametrize("compression", ["zstd", None])
async def test_oci_archive_with_zstd_or_plain_layers(engine: Engine, tmp_path: Path, compression: str | None) -> None:
    """(skopeo would gzip plain layers on the way: this archive is the layout tarred as it is.)"""
    built = write_layout(tmp_path / "layout", [BASE, TOP], tag="t", compression=compression)
    tar_of(tmp_path / "o.tar", layout_members(tmp_path / "layout"))
    image, _ = await resolve_and_fetch(OciArchiveSource(f"{tmp_path / 'o.tar'}:t", indexer=indexer(engine)),
                                       tmp_path / "blobs")
    assert [layer.digest for layer in image.layers] == built.layer_digests
    assert [layer.diff_id for layer in image.layers] == built.diff_ids
    if compression is None:
        assert image.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar"
        assert built.layer_digests == built.diff_ids


async def test_a_plain_oci_layer_must_be_its_own_diff_id(engine: Engine, tmp_path: Path) -> None:
    """An uncompressed layer's blob is its tar: a config naming another diff id for it is refused at resolve
    (else the layer would be stored under that diff id and reused for another image)."""
    layout = tmp_path / "layout"
    layer = layer_tar({"etc": DIR, "etc/evil": b"x"})
    config = json.dumps({"architecture": host_arch(), "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "5" * 64]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": _put_blob(layout, config),
                                      "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": _put_blob(layout, layer), "size": len(layer)}]}).encode()
    _write_index(layout, [{"mediaType": OCI_MANIFEST, "digest": _put_blob(layout, manifest), "size": len(manifest)}])
    archive = tar_of(tmp_path / "forged.tar", layout_members(layout))
    with pytest.raises(Unprocessable) as info:
        await resolve_only(OciArchiveSource(str(archive), indexer=indexer(engine)))
    assert "uncompressed tar" in str(info.value) and "5555" in str(info.value)


async def test_damaged_layer_bytes_fail_the_fetch(engine: Engine, layout: tuple[Path, Built], tmp_path: Path) -> None:
    path, built = layout
    archive = tmp_path / "image.tar"
    skopeo_copy(f"oci:{path}:t1", f"oci-archive:{archive}")
    data = bytearray(archive.read_bytes())
    blob = (Path(path) / "blobs/sha256" / built.layer_digests[1][7:]).read_bytes()
    at = bytes(data).index(blob) + len(blob) // 2
    data[at] ^= 0xFF
    archive.write_bytes(bytes(data))
    source = OciArchiveSource(str(archive), indexer=indexer(engine))
    try:
        image = await source.resolve()
        with pytest.raises(Unprocessable) as info:
            await source.fetch_blob(image.layers[1], tmp_path / "bad", lambda _: None)
        assert built.layer_digests[1] in str(info.value) and "damaged or altered" in str(info.value)
    finally:
        await source.aclose()


# -- not an archive at all -----------------------------------------------------------------------------

async def refused(engine: Engine, scheme: str, path: Path | str) -> EngineError:
    with pytest.raises(EngineError) as info:
        await resolve_only(open_source(f"{scheme}{path}", indexer=indexer(engine)))
    return info.value


@pytest.mark.parametrize("scheme", ["docker-archive:", "oci-archive:"])
async def test_paths_that_are_no_archive(engine: Engine, tmp_path: Path, scheme: str) -> None:
    assert (await refused(engine, scheme, tmp_path / "missing.tar")).status == 404
    error = await refused(engine, scheme, tmp_path)
    assert error.status == 422 and "is a directory" in str(error)
    (tmp_path / "text").write_text("just some text, no tar header at all\n" * 100)
    error = await refused(engine, scheme, tmp_path / "text")
    assert error.status == 422 and "not a tar archive" in str(error)
    (tmp_path / "empty").write_bytes(b"")
    assert (await refused(engine, scheme, tmp_path / "empty")).status == 422
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would block until a writer comes: never
    async with asyncio.timeout(10):
        error = await refused(engine, scheme, tmp_path / "fifo")
    assert error.status == 422 and "not a regular file" in str(error)
    tar_of(tmp_path / "plain.tar", {"hello.txt": b"hi"})
    error = await refused(engine, scheme, tmp_path / "plain.tar")
    assert error.status == 422 and ("no manifest.json" in str(error) or "no index.json" in str(error))


async def test_compressed_and_truncated_archives(engine: Engine, layout: tuple[Path, Built], tmp_path: Path) -> None:
    path, _ = layout
    archive = tmp_path / "image.tar"
    skopeo_copy(f"oci:{path}:t1", f"docker-archive:{archive}")
    data = archive.read_bytes()
    (tmp_path / "image.tar.gz").write_bytes(gzip.compress(data))
    error = await refused(engine, "docker-archive:", tmp_path / "image.tar.gz")
    assert error.status == 422 and "gzip-compressed" in str(error)
    layer_at = data.index(b"etc/a")  # inside the first layer's data (its first entry's name)
    (tmp_path / "cut-data.tar").write_bytes(data[:layer_at + 100])
    error = await refused(engine, "docker-archive:", tmp_path / "cut-data.tar")
    assert error.status == 422 and "truncated" in str(error)
    with tarfile.open(archive) as tar:
        second = tar.getmembers()[1].offset  # tarfile stops quietly at a cut header after the first member
    (tmp_path / "cut-header.tar").write_bytes(data[:second + 100])
    error = await refused(engine, "docker-archive:", tmp_path / "cut-header.tar")
    assert error.status == 422 and "a header is cut" in str(error)
    (tmp_path / "garbled.tar").write_bytes(data[:second] + b"x" * 512 + data[second + 512:])
    error = await refused(engine, "docker-archive:", tmp_path / "garbled.tar")
    assert error.status == 422 and f"no valid tar header at byte {second}" in str(error)


def test_a_member_index_that_lies_is_refused() -> None:
    """The index comes from a helper that parsed hostile bytes: the engine trusts none of its numbers."""
    good = parse_index(b'{"files": {"./a": [512, 10]}, "links": {"b": "a"}}', 1024, "x")
    assert good.find("a") == good.find("b") and good.find("a").offset == 512  # type: ignore[union-attr]
    with pytest.raises(Unprocessable) as info:
        parse_index(b'{"files": {"a": [1000, 100]}, "links": {}}', 1024, "x")
    assert "claims bytes 1000..1100 but the file has 1024" in str(info.value)
    for payload in (b'{"files": {"a": [-1, 1]}, "links": {}}', b'{"files": {"a": [0, -5]}, "links": {}}'):
        with pytest.raises(Unprocessable):
            parse_index(payload, 1024, "x")
    for payload in (b'{"files": {"a": [0, 1.5]}, "links": {}}', b'{"files": [], "links": {}}', b"[", b"null",
                    b'{"files": {"a": [0, true]}, "links": {}}'):
        with pytest.raises(EngineError):
            parse_index(payload, 1024, "x")
    loop = parse_index(b'{"files": {}, "links": {"a": "b", "b": "a"}}', 1024, "x")
    assert loop.find("a") is None


async def test_a_cancelled_fetch_returns_at_once_and_its_late_write_lands_nowhere(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunk in flight when the import is cancelled may be stuck (a stalled NFS read: here a chunk that
    takes 1 s). The cancel does not wait for it; the caller closes and removes its files at once, and the
    chunk's late write goes through the thread's own fd: not into a file that reused the closed fd's number,
    not into a new file at the removed path."""
    from contree_tui.engine.image_sources import blob_copy

    big = os.urandom(12 << 20)  # three copy chunks
    archive, _ = docker_archive(tmp_path, "big", [{"data": big}], "big:1", compression=None)
    real_chunk = blob_copy._copy_chunk

    def slow_chunk(*args: object) -> int:
        time.sleep(1.0)
        return real_chunk(*args)  # type: ignore[arg-type]

    source = DockerArchiveSource(str(archive), indexer=indexer(engine))
    try:
        image = await source.resolve()
        monkeypatch.setattr(blob_copy, "_copy_chunk", slow_chunk)
        dest = tmp_path / "partial"
        task = asyncio.create_task(source.fetch_blob(image.layers[0], dest, lambda _: None))
        await asyncio.sleep(0.3)  # the first chunk's thread is in its read
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 0.5  # not held up by the stuck chunk
        dest.unlink()  # what the import does on cancel
        victims = [os.open(tmp_path / f"victim-{n}", os.O_RDWR | os.O_CREAT, 0o600) for n in range(4)]
        await asyncio.sleep(1.2)  # the stuck chunk ends and writes its 4 MiB
        sizes = [os.fstat(fd).st_size for fd in victims]
        for fd in victims:
            os.close(fd)
        assert sizes == [0, 0, 0, 0] and not dest.exists()
        monkeypatch.setattr(blob_copy, "_copy_chunk", real_chunk)
        await source.fetch_blob(image.layers[0], dest, lambda _: None)  # the source is still usable
        assert sha256(dest) == image.layers[0].digest
    finally:
        await source.aclose()


@pytest.mark.parametrize("sandbox_users", [True, False])
async def test_the_archive_reader_sees_an_empty_root_and_a_read_only_input(
        open_engine: Callable[..., Awaitable[Engine]], tmp_path: Path, sandbox_users: bool) -> None:
    """The helper that parses the tar (HelperSet.start_reading) has nothing of the host in reach, with the
    sandboxes' user ids (as their root) and without (as HELPER_UID)."""
    engine = await open_engine(EngineConfig() if sandbox_users else EngineConfig(sandbox_ids=None))
    from contree_tui.engine.sandbox import credentials
    from contree_tui.engine.sandbox.helper import INPUT_FD, HelperLimits, HelperOutput

    def probe(out: HelperOutput) -> None:  # runs in the helper
        try:
            os.write(INPUT_FD, b"x")
            wrote = "yes"
        except OSError as exc:
            wrote = exc.strerror or "error"
        try:
            os.fchmod(INPUT_FD, 0o777)
            chmod = "yes"
        except OSError as exc:
            chmod = exc.strerror or "error"
        out.header(root=sorted(os.listdir("/")), input=os.pread(INPUT_FD, 5, 0).decode(), wrote=wrote,
                   chmod=chmod, caps=list(credentials.capabilities()), no_new_privs=credentials.no_new_privs())

    (tmp_path / "input").write_bytes(b"hello world")
    fd = os.open(tmp_path / "input", os.O_RDWR)
    try:
        helper = await engine.helpers.start_reading(engine._inspect_root, probe, HelperLimits(lifetime=10),
                                                    input_fd=fd)
    finally:
        os.close(fd)
    try:
        header = await helper.header(10)
    finally:
        helper.close()
    assert header["root"] == []  # no /proc, no host path, nothing of any image
    assert header["caps"] == [0, 0, 0] and header["no_new_privs"]
    assert header["input"] == "hello" and header["wrote"] != "yes" and header["chmod"] != "yes"
    assert (tmp_path / "input").read_bytes() == b"hello world"
    assert (tmp_path / "input").stat().st_mode & 0o777 != 0o777


async def test_hostile_tar_headers(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PAX record claiming a huge size, and more members than the reader keeps (its cap lowered here: the
    helper is a fork of this process, so it sees the patched module)."""
    from contree_tui.engine.image_sources import tar_members

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        info.pax_headers = {"size": str(1 << 60)}  # overrides the header's own size field when read
        tar.addfile(info, io.BytesIO(b"[]"))
    (tmp_path / "pax.tar").write_bytes(buf.getvalue())
    error = await refused(engine, "docker-archive:", tmp_path / "pax.tar")
    assert error.status == 422 and "truncated" in str(error), error

    monkeypatch.setattr(tar_members, "MAX_MEMBERS", 50)
    tar_of(tmp_path / "many.tar", {f"f{n}": b"" for n in range(51)})
    error = await refused(engine, "oci-archive:", tmp_path / "many.tar")
    assert error.status == 422 and "more than 50 members" in str(error), error


async def test_oci_layouts_share_the_resolution(tmp_path: Path) -> None:
    """`oci:DIR` resolves through the same oci_index as the archives: @N, names, the several-images rule."""
    layout = tmp_path / "layout"
    one = write_layout(layout, [BASE], tag="one")
    two = write_layout(layout, [BASE, TOP], tag="two")
    assert (await resolve_only(open_source(f"oci:{layout}:@1"))).source_digest == two.manifest_digest
    assert (await resolve_only(open_source(f"oci:{layout}:one"))).source_digest == one.manifest_digest
    with pytest.raises(EngineError) as info:
        await resolve_only(open_source(f"oci:{layout}"))
    assert info.value.status == 400 and "holds 2 images" in str(info.value)


async def test_the_index_is_cached_until_the_file_changes(engine: Engine, layout: tuple[Path, Built],
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = layout
    archive = tmp_path / "image.tar"
    skopeo_copy(f"oci:{path}:t1", f"docker-archive:{archive}")
    started = []
    real_start = engine.helpers.start_reading

    async def counting(*args: object, **kwargs: object) -> object:
        started.append(1)
        return await real_start(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.helpers, "start_reading", counting)
    idx = indexer(engine)
    first = await resolve_only(DockerArchiveSource(str(archive), indexer=idx))
    again, _ = await resolve_and_fetch(DockerArchiveSource(str(archive), indexer=idx), tmp_path / "again")
    assert len(started) == 1 and again.source_digest == first.source_digest  # no helper the second time
    os.utime(archive)  # any change of the file: read again
    await resolve_only(DockerArchiveSource(str(archive), indexer=idx))
    assert len(started) == 2
    archive.write_bytes(b"x" * 1024)  # rewritten in place (same inode): its new content is what is judged
    with pytest.raises(Unprocessable):
        await resolve_only(DockerArchiveSource(str(archive), indexer=idx))
    assert len(started) == 3
