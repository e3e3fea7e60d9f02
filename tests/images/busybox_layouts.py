"""OCI layouts whose images run: a base layer with the host's static busybox (Debian's busybox-static) and
its applets, so a test can import an image and run `ls`, `cat`, `env` in it for real."""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

from tests.images.oci_build import (
    DIR,
    OCI_CONFIG,
    OCI_MANIFEST,
    OPAQUE,
    WHITEOUT,
    Built,
    File,
    Symlink,
    _put_blob,
    _write_index,
    write_layout,
)

APPLETS = ("sh", "ls", "cat", "env", "test", "echo", "id", "pwd", "stat", "find", "sort", "readlink", "wc")


@cache
def busybox_bytes() -> bytes:
    path = shutil.which("busybox") or "/bin/busybox"
    with open(path, "rb") as fh:
        return fh.read()


def busybox_layer(**extra: Any) -> dict[str, Any]:
    """A root layer: /bin/busybox, its applets as symlinks, /etc, /tmp, plus `extra`."""
    layer: dict[str, Any] = {"bin": DIR, "bin/busybox": File(busybox_bytes(), 0o755), "etc": DIR, "tmp": DIR}
    for applet in APPLETS:
        layer[f"bin/{applet}"] = Symlink("busybox")
    layer.update(extra)
    return layer


# The case: a deleted file, a replaced (opaque) directory and a changed file, over a base.
BASE_FILES = {"etc/gone": b"deleted in layer 2\n", "etc/changed": b"old\n", "etc/kept": b"kept\n",
              "opt": DIR, "opt/old": b"old opt\n", "opt/sub": DIR, "opt/sub/deep": b"deep\n"}
TOP = {"etc/gone": WHITEOUT, "etc/changed": b"new\n", "opt": OPAQUE, "opt/new": b"new opt\n"}


def whiteout_layout(layout: Path, *, tag: str = "t1", compression: str | None = "gzip", **kwargs: Any) -> Built:
    return write_layout(layout, [busybox_layer(**BASE_FILES), TOP], tag=tag, compression=compression, **kwargs)


def zeros_layout(layout: Path, size: int = 4 << 30, tag: str = "big") -> Path:
    """One gzip layer of ~size/1000 bytes holding a file of `size` zeros (concatenated gzip members of one
    block, as the rootfs bomb test makes it): extracting it takes far longer than the tests wait. Its diff
    id is not the content's (hashing 4 GiB here would cost seconds): these imports never get that far."""
    layout.mkdir(parents=True)
    info = tarfile.TarInfo("zeros")
    info.size = size
    block = 16 << 20
    zeros = gzip.compress(bytes(block), compresslevel=1)
    blob = gzip.compress(info.tobuf(tarfile.GNU_FORMAT)) + zeros * (size // block) + gzip.compress(bytes(1024))
    digest = _put_blob(layout, blob)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": _put_blob(layout, config),
                                      "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": digest, "size": len(blob)}]}).encode()
    _write_index(layout, [{"mediaType": OCI_MANIFEST, "digest": _put_blob(layout, manifest),
                           "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}])
    return layout
