"""OCI image layouts built by the tests, byte by byte: layers with files, symlinks, deletions (whiteouts) and
replaced directories (opaque markers), gzip / zstd / plain, single images and multi-platform indexes.

    spec = [{"etc/a": b"1", "bin": DIR, "bin/sh": Symlink("/bin/busybox")},
            {"etc/a": WHITEOUT, "opt": OPAQUE, "opt/new": b"x"}]
    digest = write_layout(tmp / "layout", spec, tag="t1", env=["A=1"])
    skopeo copy oci:DIR:t1 docker://127.0.0.1:PORT/repo:t1   (see push_layout)

Entries are written in sorted order of their path, parents first, owner 0:0 unless given.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    None: "application/vnd.oci.image.layer.v1.tar",
}


DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


DIR = _Marker("DIR")
WHITEOUT = _Marker("WHITEOUT")  # the path was deleted: `dir/.wh.name`
OPAQUE = _Marker("OPAQUE")  # the directory replaces the lower one: `dir/` + `dir/.wh..wh..opq`


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Hardlink:
    target: str  # path inside the layer


@dataclass
class Built:
    manifest_digest: str
    config_digest: str
    layer_digests: list[str] = field(default_factory=list)  # blob digests, bottom first
    diff_ids: list[str] = field(default_factory=list)
    blob_bytes: int = 0


def host_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def layer_tar(entries: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            value = entries[path]
            path = path.strip("/")
            parent, _, name = path.rpartition("/")
            if value is WHITEOUT:
                _add(tar, tarfile.TarInfo(f"{parent}/.wh.{name}" if parent else f".wh.{name}"), b"")
                continue
            info = tarfile.TarInfo(path)
            info.mtime = 1_700_000_000
            if value is DIR or value is OPAQUE:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                _add(tar, info, None)
                if value is OPAQUE:
                    _add(tar, tarfile.TarInfo(f"{path}/.wh..wh..opq"), b"")
            elif isinstance(value, Symlink):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, value.target, 0o777
                _add(tar, info, None)
            elif isinstance(value, Hardlink):
                info.type, info.linkname = tarfile.LNKTYPE, value.target.strip("/")
                _add(tar, info, None)
            else:
                f = value if isinstance(value, File) else File(value)
                info.mode, info.uid, info.gid = f.mode, f.uid, f.gid
                _add(tar, info, f.data)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, data: bytes | None) -> None:
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def _compress(raw: bytes, compression: str | None) -> bytes:
    if compression == "gzip":
        return gzip.compress(raw, mtime=0)
    if compression == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
    return raw


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _put_blob(layout: Path, data: bytes) -> str:
    digest = _digest(data)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / digest.split(":", 1)[1]).write_bytes(data)
    return digest


def write_image(layout: Path, layers: list[dict[str, Any] | bytes], *, compression: str | None = "gzip",
                env: list[str] | None = None, workdir: str = "", user: str = "", arch: str | None = None,
                variant: str = "") -> tuple[dict[str, Any], Built]:
    """The blobs of one image (layers, config, manifest) into `layout`; returns (manifest descriptor, Built)."""
    built = Built("", "")
    descriptors = []
    for entries in layers:
        raw = entries if isinstance(entries, bytes) else layer_tar(entries)  # bytes: a tar made by the test
        blob = _compress(raw, compression)
        digest = _put_blob(layout, blob)
        built.layer_digests.append(digest)
        built.diff_ids.append(_digest(raw))
        built.blob_bytes += len(blob)
        descriptors.append({"mediaType": LAYER_TYPES[compression], "digest": digest, "size": len(blob)})
    arch = arch or host_arch()
    config: dict[str, Any] = {
        "architecture": arch, "os": "linux",
        "config": {"Env": env if env is not None else [DEFAULT_PATH]},
        "rootfs": {"type": "layers", "diff_ids": built.diff_ids},
    }
    if workdir:
        config["config"]["WorkingDir"] = workdir
    if user:
        config["config"]["User"] = user
    if variant:
        config["variant"] = variant
    config_bytes = json.dumps(config, sort_keys=True).encode()
    built.config_digest = _put_blob(layout, config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": built.config_digest, "size": len(config_bytes)},
                "layers": descriptors}
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    built.manifest_digest = _put_blob(layout, manifest_bytes)
    platform_ = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return {"mediaType": OCI_MANIFEST, "digest": built.manifest_digest, "size": len(manifest_bytes),
            "platform": platform_}, built


def _write_index(layout: Path, manifests: list[dict[str, Any]]) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    names = {m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in manifests}
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") not in names]
    index["manifests"] += manifests
    index_path.write_text(json.dumps(index))


def write_layout(layout: Path, layers: list[dict[str, Any] | bytes], *, tag: str = "latest", **kwargs: Any) -> Built:
    """One image under `tag` in the OCI layout `layout` (created or added to)."""
    layout.mkdir(parents=True, exist_ok=True)
    descriptor, built = write_image(layout, layers, **kwargs)
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
    _write_index(layout, [descriptor])
    return built


def write_multiplatform(layout: Path, images: dict[str, list[dict[str, Any]]], *, tag: str = "latest",
                        **kwargs: Any) -> tuple[str, dict[str, Built]]:
    """An image index under `tag` with one image per "arch" or "arch/variant" key; returns (index digest, builts)."""
    layout.mkdir(parents=True, exist_ok=True)
    descriptors, builts = [], {}
    for key, layers in images.items():
        arch, _, variant = key.partition("/")
        descriptor, builts[key] = write_image(layout, layers, arch=arch, variant=variant, **kwargs)
        descriptors.append(descriptor)
    index_bytes = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors},
                             sort_keys=True).encode()
    digest = _put_blob(layout, index_bytes)
    _write_index(layout, [{"mediaType": OCI_INDEX, "digest": digest, "size": len(index_bytes),
                           "annotations": {"org.opencontainers.image.ref.name": tag}}])
    return digest, builts


def skopeo_copy(source: str, dest: str, *extra: str) -> None:
    """skopeo copy with the flags a test registry on loopback (plain HTTP) needs; raises with skopeo's stderr."""
    if shutil.which("skopeo") is None:
        raise RuntimeError("skopeo is not installed (apt-get install skopeo)")
    args = ["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
            *extra, source, dest]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
