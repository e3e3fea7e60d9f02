"""The registry source against a real docker-registry: manifests, indexes, Docker schema 2, blobs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contree_tui.engine.image_sources import platform_choice
from contree_tui.engine.models import EngineError
from contree_tui.engine.registry import manifests
from tests.engine.registry.helpers import fetch_all, random_bytes, source
from tests.images.oci_build import DIR, WHITEOUT, host_arch, write_layout, write_multiplatform
from tests.images.registry import Registry

THREE_LAYERS = [
    {"bin": DIR, "bin/tool": b"#!/bin/sh\necho one\n", "etc": DIR, "etc/a": b"1"},
    {"etc/a": WHITEOUT, "etc/b": b"2", "data": DIR, "data/blob": random_bytes(300_000)},
    {"etc/c": b"3"},
]


async def test_multi_layer_image_resolves_and_every_blob_is_written_and_verified(registry: Registry,
                                                                                tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout", THREE_LAYERS, tag="v1", env=["A=1", "PATH=/bin"], workdir="/data")
    registry.push(tmp_path / "layout", "v1", "team/multi")
    src = source(registry.url("team/multi", "v1"))
    try:
        image = await src.resolve()
        assert image.reference == f"docker://{registry.host}/team/multi:v1"
        assert image.source_digest == built.manifest_digest  # the manifest actually used, byte for byte
        assert [b.digest for b in image.layers] == built.layer_digests
        assert [b.diff_id for b in image.layers] == built.diff_ids
        assert {b.media_type for b in image.layers} == {"application/vnd.oci.image.layer.v1.tar+gzip"}
        assert image.config["config"]["Env"] == ["A=1", "PATH=/bin"]
        assert image.config["config"]["WorkingDir"] == "/data"
        assert image.platform == ""  # no index
        paths = await fetch_all(src, image, tmp_path / "blobs")
        layout_blobs = tmp_path / "layout" / "blobs" / "sha256"
        for path, digest in zip(paths, built.layer_digests, strict=True):
            assert path.read_bytes() == (layout_blobs / digest.split(":")[1]).read_bytes()
    finally:
        await src.aclose()


async def test_a_digest_pins_the_manifest_and_wins_over_the_tag(registry: Registry, tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout", [{"f": b"pinned"}], tag="v1")
    registry.push(tmp_path / "layout", "v1", "team/pinned")
    other = write_layout(tmp_path / "layout2", [{"f": b"moved"}], tag="v2")
    registry.push(tmp_path / "layout2", "v2", "team/pinned", dest_tag="v1")  # the tag now names another image
    for url in (f"docker://{registry.host}/team/pinned@{built.manifest_digest}",
                f"{registry.host}/team/pinned:v1@{built.manifest_digest}"):
        src = source(url)
        image = await src.resolve()
        await src.aclose()
        assert image.source_digest == built.manifest_digest
        assert [b.diff_id for b in image.layers] == built.diff_ids
    src = source(registry.url("team/pinned", "v1"))
    assert (await src.resolve()).source_digest == other.manifest_digest
    await src.aclose()


async def test_an_index_resolves_to_this_machines_platform(registry: Registry, tmp_path: Path) -> None:
    mine = host_arch() + ("/v8" if host_arch() == "arm64" else "")
    others = [a for a in ("amd64", "s390x", "ppc64le") if a != host_arch()][:2]
    index_digest, builts = write_multiplatform(
        tmp_path / "layout", {others[0]: [{"f": b"a"}], mine: [{"f": b"mine"}, {"g": b"2"}], others[1]: [{"f": b"c"}]},
        tag="multi")
    registry.push(tmp_path / "layout", "multi", "team/index", "--all")
    src = source(registry.url("team/index", "multi"))
    try:
        image = await src.resolve()
        assert image.source_digest == builts[mine].manifest_digest  # the platform manifest, not the index
        assert image.extra["index_digest"] == index_digest
        assert image.platform == f"linux/{mine}"
        assert [b.diff_id for b in image.layers] == builts[mine].diff_ids
        await fetch_all(src, image, tmp_path / "blobs")
    finally:
        await src.aclose()


async def test_a_docker_manifest_list_resolves_to_this_machines_platform(registry: Registry, tmp_path: Path) -> None:
    other = "s390x" if host_arch() != "s390x" else "amd64"
    _, builts = write_multiplatform(tmp_path / "layout", {host_arch(): [{"f": b"mine"}], other: [{"f": b"x"}]},
                                    tag="list")
    registry.push(tmp_path / "layout", "list", "team/list", "--all", "--format", "v2s2")
    src = source(registry.url("team/list", "list"))
    try:
        image = await src.resolve()
        assert image.extra["media_type"] == manifests.DOCKER_MANIFEST
        assert image.platform.startswith(f"linux/{host_arch()}")
        assert [b.diff_id for b in image.layers] == builts[host_arch()].diff_ids
        await fetch_all(src, image, tmp_path / "blobs")
    finally:
        await src.aclose()


async def test_an_index_without_this_platform_is_422_naming_the_platforms_it_has(registry: Registry,
                                                                                 tmp_path: Path) -> None:
    others = [a for a in ("amd64", "s390x", "ppc64le") if a != host_arch()][:2]
    write_multiplatform(tmp_path / "layout", {others[0]: [{"f": b"a"}], f"{others[1]}": [{"f": b"b"}]}, tag="x")
    registry.push(tmp_path / "layout", "x", "team/foreign", "--all")
    src = source(registry.url("team/foreign", "x"))
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert err.value.status == 422
    message = str(err.value)
    assert "no image for this host's platform linux/" in message
    assert f"linux/{others[0]}" in message and f"linux/{others[1]}" in message


async def test_docker_schema_2_manifests(registry: Registry, tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout", THREE_LAYERS[:2], tag="v1", env=["B=2"])
    registry.push(tmp_path / "layout", "v1", "team/docker", "--format", "v2s2")
    src = source(registry.url("team/docker", "v1"))
    try:
        image = await src.resolve()
        assert image.extra["media_type"] == manifests.DOCKER_MANIFEST
        assert image.source_digest != built.manifest_digest  # skopeo rewrote the manifest as schema 2
        assert {b.media_type for b in image.layers} == {"application/vnd.docker.image.rootfs.diff.tar.gzip"}
        assert [b.diff_id for b in image.layers] == built.diff_ids
        assert image.config["config"]["Env"] == ["B=2"]
        await fetch_all(src, image, tmp_path / "blobs")
    finally:
        await src.aclose()


async def test_unknown_repository_and_unknown_tag_are_404_saying_which(registry: Registry, tmp_path: Path) -> None:
    write_layout(tmp_path / "layout", [{"f": b"x"}], tag="v1")
    registry.push(tmp_path / "layout", "v1", "team/known")
    cases = {
        registry.url("team/nothing-here", "v1"): "has no repository 'team/nothing-here'",
        registry.url("team/known", "v9"): "has no tag 'v9'",
        f"docker://{registry.host}/team/known@sha256:{'0' * 64}": f"has no manifest sha256:{'0' * 64}",
    }
    for url, why in cases.items():
        src = source(url)
        with pytest.raises(EngineError) as err:
            await src.resolve()
        await src.aclose()
        assert err.value.status == 404
        assert str(err.value).startswith("unknown repository or tag: docker://")
        assert why in str(err.value)


async def test_a_blob_tampered_with_in_the_registry_fails_its_digest_check(registry: Registry,
                                                                             tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout", [{"f": b"good"}, {"g": random_bytes(10_000)}], tag="v1")
    registry.push(tmp_path / "layout", "v1", "team/tampered")
    stored = registry.blob_path(built.layer_digests[1])
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed: only the digest can tell
    stored.write_bytes(bytes(data))
    src = source(registry.url("team/tampered", "v1"))
    try:
        image = await src.resolve()
        await src.fetch_blob(image.layers[0], tmp_path / "ok", lambda n: None)
        with pytest.raises(EngineError) as err:
            await src.fetch_blob(image.layers[1], tmp_path / "bad", lambda n: None)
    finally:
        await src.aclose()
    assert err.value.status == 502
    assert "digest mismatch" in str(err.value) and built.layer_digests[1] in str(err.value)


async def test_a_tampered_config_is_refused_before_it_is_used(registry: Registry, tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout", [{"f": b"x"}], tag="v1", env=["X=1"])
    registry.push(tmp_path / "layout", "v1", "team/badconfig")
    stored = registry.blob_path(built.config_digest)
    stored.write_bytes(stored.read_bytes().replace(b"X=1", b"X=2"))
    src = source(registry.url("team/badconfig", "v1"))
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert "digest mismatch" in str(err.value) and built.config_digest in str(err.value)


def test_schema_1_manifests_are_refused_with_a_way_out() -> None:
    doc = json.dumps({"schemaVersion": 1, "name": "x", "tag": "v1", "fsLayers": []}).encode()
    with pytest.raises(EngineError) as err:
        manifests.parse_document(doc, "application/vnd.docker.distribution.manifest.v1+prettyjws", "the manifest")
    assert err.value.status == 422 and "schema 1" in str(err.value) and "push the image again" in str(err.value)


@pytest.mark.parametrize(("machine", "entries", "chosen"), [
    ("x86_64", ["arm64", "amd64"], "linux/amd64"),
    ("aarch64", ["amd64", "arm64"], "linux/arm64"),  # arm64 indexes often leave out the v8
    ("aarch64", ["arm64", "arm64/v8"], "linux/arm64/v8"),  # the exact variant first
    ("armv7l", ["arm/v6", "arm/v7"], "linux/arm/v7"),
])
def test_an_index_entry_for_the_machine(monkeypatch: pytest.MonkeyPatch, machine: str, entries: list[str],
                                        chosen: str) -> None:
    monkeypatch.setattr(platform_choice.platform, "machine", lambda: machine)
    index = {"manifests": [_entry(e, i) for i, e in enumerate(entries)]}
    descriptor, name = manifests.choose_platform(index, "the index")
    assert name == chosen
    assert descriptor.digest == index["manifests"][entries.index(chosen.removeprefix("linux/"))]["digest"]


def test_no_entry_for_the_machine_names_the_platforms_there_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform_choice.platform, "machine", lambda: "armv7l")
    with pytest.raises(EngineError) as err:
        manifests.choose_platform({"manifests": [_entry("amd64", 0), _entry("arm/v6", 1)]}, "the index")
    assert err.value.status == 422
    assert "platform linux/arm/v7" in str(err.value) and "linux/amd64, linux/arm/v6" in str(err.value)


def _entry(key: str, i: int) -> dict[str, object]:
    arch, _, variant = key.partition("/")
    return {"mediaType": manifests.OCI_MANIFEST, "digest": f"sha256:{i:064x}", "size": 100,
            "platform": {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}}
