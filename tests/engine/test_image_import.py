"""Issue #11: image import operations from `oci:DIR[:REF]` layouts and `rootfs:PATH`, on a real engine.

Each image is built byte by byte (tests/images/oci_build.py) over the host's static busybox and verified by
running commands in it: deleted files, replaced (opaque) directories and changed files read as the layers
say, whatever the compression; layers are stored once by diff id; a known manifest comes back as the same
image; a corrupt, cancelled, timed-out or interrupted import leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import EngineError, Operation, OperationStatus
from contree_tui.engine.store import Store
from tests.engine.helpers import sh, stdout
from tests.images.busybox_layouts import busybox_bytes, busybox_layer, whiteout_layout, zeros_layout
from tests.images.oci_build import (
    DIR,
    OCI_CONFIG,
    OCI_MANIFEST,
    OPAQUE,
    WHITEOUT,
    _put_blob,
    _write_index,
    layer_tar,
    write_layout,
)

OpenEngine = Callable[..., Awaitable[Engine]]


async def imported(engine: Engine, url: str, **body: Any) -> Operation:
    op = engine.import_image({"registry": {"url": url}, **body})
    assert op.kind == "image_import" and op.status is OperationStatus.PENDING
    return await engine.wait(op.uuid)


def layer_dirs(engine: Engine) -> set[str]:
    return {p.name for p in engine.state.layers.iterdir()}


def leftovers(engine: Engine) -> list[str]:
    imports = engine.state.root / "imports"
    return [str(p) for p in imports.rglob("*")] if imports.exists() else []


async def test_layers_with_a_deleted_file_an_opaque_dir_and_a_changed_file(engine: Engine, tmp_path: Path) -> None:
    built = whiteout_layout(tmp_path / "layout", env=["PATH=/bin", "GREETING=hello there"], workdir="/opt",
                            user="1000:1000")
    op = await imported(engine, f"oci:{tmp_path / 'layout'}:t1", tag="mine:1")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert op.result_tag == "mine:1" and op.image_uuid is None
    image = engine.store.image_by_tag("mine:1")
    assert image.uuid == op.result_image_uuid and len(image.layers) == 2

    run = await sh(engine, image.uuid, "ls /etc; echo --; ls /opt; echo --; cat /etc/changed /etc/kept")
    listing = stdout(run).split("--\n")
    assert "gone" not in listing[0].split() and {"changed", "kept"} <= set(listing[0].split())
    assert listing[1].split() == ["new"]  # opt/old and opt/sub of the base are hidden: the dir was replaced
    assert listing[2] == "new\nkept\n"

    # On disk, in overlay's format: a char 0/0 whiteout, the opaque xattr, no `.wh.` file anywhere
    top = Path(engine.layer_path(image.layers[1]))
    st = os.lstat(top / "etc/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(top / "opt", "trusted.overlay.opaque") == b"y"
    assert not [p for p in top.rglob(".wh.*")]
    # the config: Env applied (below), User and WorkingDir recorded, not applied
    assert image.user == "1000:1000" and image.config_workdir == "/opt" and image.workdir == ""
    assert stdout(await sh(engine, image.uuid, "pwd")) == "/\n"
    assert built.diff_ids[1] in {row[0] for row in engine.store.db.execute("SELECT diff_id FROM layer_digests")}
    assert leftovers(engine) == []


async def test_a_layout_written_by_umoci(engine: Engine, tmp_path: Path) -> None:
    """umoci (a real OCI tool) writes deletions as one `.wh.` per removed child, in its own entry order."""
    if shutil.which("umoci") is None:
        pytest.skip("umoci is not installed (apt-get install umoci)")
    layout, bundle = tmp_path / "L", tmp_path / "bundle"
    root = bundle / "rootfs"

    def umoci(*args: str) -> None:
        subprocess.run(["umoci", *args], check=True, capture_output=True)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:base")
    umoci("unpack", "--image", f"{layout}:base", str(bundle))
    (root / "bin").mkdir()
    (root / "bin/busybox").write_bytes(busybox_bytes())
    os.chmod(root / "bin/busybox", 0o755)
    for applet in ("sh", "ls", "cat", "test"):
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc").mkdir()
    (root / "etc/gone").write_text("gone\n")
    (root / "etc/changed").write_text("old\n")
    (root / "opt/sub").mkdir(parents=True)
    (root / "opt/old").write_text("old\n")
    (root / "opt/sub/deep").write_text("deep\n")
    umoci("repack", "--refresh-bundle", "--image", f"{layout}:base", str(bundle))
    shutil.rmtree(root / "opt")
    (root / "etc/gone").unlink()
    (root / "opt").mkdir()
    (root / "opt/new").write_text("new\n")
    (root / "etc/changed").write_text("new\n")
    umoci("repack", "--image", f"{layout}:next", str(bundle))

    op = await imported(engine, f"oci:{layout}:next", tag="umoci:next")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(await sh(engine, "tag:umoci:next", "ls /opt; cat /etc/changed; test -e /etc/gone || echo gone")) \
        == "new\nnew\ngone\n"
    base = await imported(engine, f"oci:{layout}:base")
    assert stdout(await sh(engine, base.result_image_uuid, "ls /opt; cat /etc/gone")) == "old\nsub\ngone\n"
    assert len(engine.store.get_image(base.result_image_uuid).layers) == 1  # its one layer, reused


@pytest.mark.parametrize("compression", ["gzip", "zstd", None])
async def test_gzip_zstd_and_plain_layers(engine: Engine, tmp_path: Path, compression: str | None) -> None:
    whiteout_layout(tmp_path / "layout", compression=compression)
    op = await imported(engine, f"oci:{tmp_path / 'layout'}:t1")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert op.result_tag is None
    assert stdout(await sh(engine, op.result_image_uuid, "cat /etc/changed; ls /opt; test -e /etc/gone || echo gone")
                  ) == "new\nnew\ngone\n"


async def test_image_env_applies_to_shell_commands_only(engine: Engine, tmp_path: Path) -> None:
    write_layout(tmp_path / "layout", [busybox_layer()], env=["PATH=/bin", "GREETING=hello there", "EMPTY="])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}")  # one image: no REF needed
    assert op.status is OperationStatus.SUCCESS, op.error
    image = op.result_image_uuid
    assert stdout(await sh(engine, image, 'echo "$GREETING|${EMPTY-unset}"')) == "hello there|\n"
    assert stdout(await sh(engine, image, 'echo "$GREETING"', env={"GREETING": "mine"})) == "mine\n"
    exec_run = await engine.run({"image": image, "command": "/bin/env", "shell": False})
    assert "GREETING" not in stdout(exec_run)  # shell=false: only the request's env (the spec)


async def test_an_opaque_root_replaces_every_layer_below(engine: Engine, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(layer_tar(busybox_layer(**{"etc/only": b"only\n"})))) as source, \
            tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo(".wh..wh..opq"), io.BytesIO(b""))  # at the layer's root
        for member in source.getmembers():
            tar.addfile(member, source.extractfile(member) if member.isreg() else None)
    replacing = buf.getvalue()
    write_layout(tmp_path / "layout", [busybox_layer(**{"etc/below": b"below\n"}), replacing])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}")
    assert op.status is OperationStatus.SUCCESS, op.error
    image = engine.store.get_image(op.result_image_uuid)
    assert len(image.layers) == 1
    assert stdout(await sh(engine, image.uuid, "ls /etc")) == "only\nresolv.conf\n"


async def test_shared_base_layer_is_stored_once(engine: Engine, tmp_path: Path) -> None:
    base = busybox_layer(**{"etc/base": b"base\n"})
    first = write_layout(tmp_path / "a", [base, {"etc/a": b"a\n"}])
    second = write_layout(tmp_path / "b", [base, {"etc/b": b"b\n"}])
    assert first.diff_ids[0] == second.diff_ids[0]
    op_a = await imported(engine, f"oci:{tmp_path / 'a'}")
    assert op_a.status is OperationStatus.SUCCESS, op_a.error
    assert len(layer_dirs(engine)) == 2
    op_b = await imported(engine, f"oci:{tmp_path / 'b'}")
    assert op_b.status is OperationStatus.SUCCESS, op_b.error
    assert len(layer_dirs(engine)) == 3  # the base once, a's top, b's top
    image_a, image_b = (engine.store.get_image(o.result_image_uuid) for o in (op_a, op_b))
    assert image_a.layers[0] == image_b.layers[0] and image_a.layers[1] != image_b.layers[1]
    events = engine.store.events(op_b.uuid)
    phases = [(e.data["phase"], e.data["layer"]) for e in events if e.type == "import_progress"]
    assert ("reuse", 0) in phases and ("download", 0) not in phases and ("download", 1) in phases
    downloaded = [e.data for e in events if e.type == "import_progress" and e.data["phase"] == "download"]
    assert downloaded[-1]["bytes_total"] == _layer_size(tmp_path / "b", second, 1)  # only the new layer's
    assert any("reused" in e.data["message"] for e in events if e.type == "import_log")
    assert stdout(await sh(engine, image_b.uuid, "cat /etc/base /etc/b; test -e /etc/a || echo no-a")) == \
        "base\nb\nno-a\n"


def _layer_size(layout: Path, built: Any, index: int) -> int:
    return (layout / "blobs/sha256" / built.layer_digests[index].split(":")[1]).stat().st_size


async def test_parallel_imports_sharing_a_base_store_it_once(engine: Engine, tmp_path: Path) -> None:
    base = busybox_layer(**{"etc/base": b"base\n"})
    for name in ("a", "b", "c"):
        write_layout(tmp_path / name, [base, {f"etc/{name}": f"{name}\n".encode()}])
    ops = [engine.import_image({"registry": {"url": f"oci:{tmp_path / name}"}, "tag": f"p:{name}"})
           for name in ("a", "b", "c")]
    done = [await engine.wait(o.uuid) for o in ops]
    assert [d.status for d in done] == [OperationStatus.SUCCESS] * 3, [d.error for d in done]
    assert len(layer_dirs(engine)) == 4  # one base, three tops
    bases = {engine.store.get_image(d.result_image_uuid).layers[0] for d in done}
    assert len(bases) == 1
    reused = [d for d in done if any(e.type == "import_progress" and e.data["phase"] == "reuse"
                                     for e in engine.store.events(d.uuid))]
    assert len(reused) == 2  # the first extracted it, the others waited for it and reused it
    for name in ("a", "b", "c"):
        assert stdout(await sh(engine, f"tag:p:{name}", f"cat /etc/base /etc/{name}")) == f"base\n{name}\n"


async def test_a_nearly_full_disk_fails_the_import_with_the_reason(open_engine: OpenEngine, tmp_path: Path) -> None:
    """A FAILED operation, not a 507 to the POST: contree-cli retries every 5xx without end (see
    tests/api/test_contree_cli_import.py), an operation's error ends it."""
    engine = await open_engine(EngineConfig(min_free_bytes=1 << 60))
    whiteout_layout(tmp_path / "layout")
    for url in (f"oci:{tmp_path / 'layout'}:t1", f"rootfs:{tmp_path / 'layout'}"):
        done = await imported(engine, url, tag="full")
        assert done.status is OperationStatus.FAILED and done.result_image_uuid is None
        assert done.error.startswith("import: the engine's disk is nearly full ("), done.error
    assert layer_dirs(engine) == set() and leftovers(engine) == []


async def test_reimport_of_the_same_manifest_is_the_same_image_at_once(engine: Engine, tmp_path: Path) -> None:
    whiteout_layout(tmp_path / "layout")
    url = f"oci:{tmp_path / 'layout'}:t1"
    first = await imported(engine, url, tag="one")
    layers = layer_dirs(engine)
    started = time.monotonic()
    again = await imported(engine, url, tag="two")
    elapsed = time.monotonic() - started
    assert again.status is OperationStatus.SUCCESS, again.error
    assert again.result_image_uuid == first.result_image_uuid and again.result_tag == "two"
    assert elapsed < 0.5, elapsed  # no blob is read again (the manifest digest is known)
    assert layer_dirs(engine) == layers
    assert set(engine.store.get_image(first.result_image_uuid).tags) == {"one", "two"}


async def test_tag_moves_to_the_new_import(engine: Engine, tmp_path: Path) -> None:
    write_layout(tmp_path / "a", [busybox_layer(**{"etc/v": b"1\n"})])
    write_layout(tmp_path / "b", [busybox_layer(**{"etc/v": b"2\n"})])
    first = await imported(engine, f"oci:{tmp_path / 'a'}", tag="app:latest")
    second = await imported(engine, f"oci:{tmp_path / 'b'}", tag="app:latest")
    assert engine.store.image_by_tag("app:latest").uuid == second.result_image_uuid != first.result_image_uuid
    assert stdout(await sh(engine, "tag:app:latest", "cat /etc/v")) == "2\n"


async def test_a_layer_whose_content_is_not_its_diff_id_fails_and_leaves_nothing(engine: Engine,
                                                                                  tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    built = whiteout_layout(layout)
    # The config names another diff id for layer 2 (the content's digest is right: only the diff id lies)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"].split(":")[1]).read_bytes())
    config["rootfs"]["diff_ids"][1] = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    config_bytes = json.dumps(config).encode()
    manifest["config"] = {"mediaType": OCI_CONFIG, "digest": _put_blob(layout, config_bytes),
                          "size": len(config_bytes)}
    manifest_bytes = json.dumps(manifest).encode()
    _write_index(layout, [{"mediaType": OCI_MANIFEST, "digest": _put_blob(layout, manifest_bytes),
                           "size": len(manifest_bytes), "annotations": {"org.opencontainers.image.ref.name": "bad"}}])
    before = layer_dirs(engine)
    op = await imported(engine, f"oci:{layout}:bad", tag="bad")
    assert op.status is OperationStatus.FAILED
    assert "layer 2/2" in op.error and built.diff_ids[1] in op.error and "image config says" in op.error
    assert layer_dirs(engine) == before and leftovers(engine) == []  # layer 1 went too: no image uses it
    assert engine.store.list_images() == [] and op.result_image_uuid is None
    assert engine.store.db.execute("SELECT COUNT(*) FROM layer_digests").fetchone()[0] == 0
    assert [e.data["status"] for e in engine.store.events(op.uuid) if e.type == "completion"] == ["FAILED"]


@pytest.mark.parametrize("body, message", [
    ({}, "registry: required"),
    ({"registry": {"url": ""}}, "registry.url: required"),
    ({"registry": {"url": 7}}, "registry.url: required"),
    ({"registry": {"url": "oci:/x"}, "tag": "bad tag!"}, "tag:"),
    ({"registry": {"url": "oci:/x"}, "timeout": 0}, "timeout:"),
    ({"registry": {"url": "oci:/x"}, "timeout": "soon"}, "timeout:"),
    ({"registry": {"url": "oci:/x", "credentials": {"username": "u"}}}, "credentials"),
    ({"registry": {"url": "oci:/x", "insecure": "yes"}}, "insecure"),
    ({"registry": {"url": "rootfs:"}}, "rootfs: needs an absolute path"),
    ({"registry": {"url": "rootfs:tree.tar"}}, "rootfs: needs an absolute path"),
    ({"registry": {"url": "oci:layout:t1"}}, "must be absolute"),
])
async def test_malformed_requests_are_refused_before_any_operation(engine: Engine, body: dict[str, Any],
                                                                   message: str) -> None:
    with pytest.raises(EngineError, match=message) as caught:
        engine.import_image(body)
    assert caught.value.status == 400
    assert engine.store.list_operations() == []


async def test_a_missing_layout_or_ref_fails_with_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    op = await imported(engine, f"oci:{tmp_path / 'nothing'}")
    assert op.status is OperationStatus.FAILED and "not an OCI image layout" in op.error
    whiteout_layout(tmp_path / "layout")
    op = await imported(engine, f"oci:{tmp_path / 'layout'}:nope")
    assert op.status is OperationStatus.FAILED and "no image named 'nope'" in op.error and "t1" in op.error


# -- a big layer: cancel and timeout mid-extraction -------------------------------------------------------

@pytest.fixture(scope="module")
def big_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zeros_layout(tmp_path_factory.mktemp("big") / "layout")


async def _until_extracting(engine: Engine, op_uuid: str) -> None:
    async with asyncio.timeout(30):
        async for event in engine.follow(op_uuid):
            if event.type == "import_progress" and event.data["phase"] == "extract" and event.data["done"] > 0:
                return
    raise AssertionError("the import never reported extraction progress")


async def test_cancel_mid_extraction_leaves_nothing(engine: Engine, big_layout: Path) -> None:
    before = layer_dirs(engine)
    op = engine.import_image({"registry": {"url": f"oci:{big_layout}:big"}, "tag": "big"})
    await _until_extracting(engine, op.uuid)
    started = time.monotonic()
    done = await engine.cancel(op.uuid)
    assert time.monotonic() - started < 5
    assert done.status is OperationStatus.CANCELLED and done.result_image_uuid is None
    assert layer_dirs(engine) == before and leftovers(engine) == []
    assert engine.store.list_images() == [] and len(engine.extractors) == 0
    assert [e.data["status"] for e in engine.store.events(op.uuid) if e.type == "completion"] == ["CANCELLED"]


async def test_timeout_mid_extraction_fails_clearly_and_leaves_nothing(engine: Engine, big_layout: Path) -> None:
    before = layer_dirs(engine)
    started = time.monotonic()
    op = await imported(engine, f"oci:{big_layout}:big", timeout=2)
    assert time.monotonic() - started < 10
    assert op.status is OperationStatus.FAILED and "timeout of 2 s" in op.error, op.error
    assert layer_dirs(engine) == before and leftovers(engine) == [] and len(engine.extractors) == 0


async def test_progress_reports_bytes_during_extraction(engine: Engine, big_layout: Path) -> None:
    op = engine.import_image({"registry": {"url": f"oci:{big_layout}:big"}})
    await _until_extracting(engine, op.uuid)
    async with asyncio.timeout(30):
        while len({e.data["done"] for e in engine.store.events(op.uuid) if e.type == "import_progress"
                   and e.data["phase"] == "extract"}) < 4:  # it moves
            await asyncio.sleep(0.1)
    await engine.cancel(op.uuid)
    progress = [e for e in engine.store.events(op.uuid) if e.type == "import_progress"]
    extracting = [e.data for e in progress if e.data["phase"] == "extract"]
    assert all(d["total"] == d["bytes_total"] and d["layers"] == 1 and d["layer"] == 0 for d in extracting)
    assert [d["done"] for d in extracting] == sorted(d["done"] for d in extracting)
    # at most ~10 a second (plus phase changes)
    stamps = [time.mktime(time.strptime(e.ts[:19], "%Y-%m-%dT%H:%M:%S")) for e in progress]
    assert len(progress) <= 10 * (max(stamps) - min(stamps) + 1) + 6


async def test_closing_the_engine_mid_import_fails_it_and_leaves_nothing(open_engine: OpenEngine,
                                                                         big_layout: Path) -> None:
    engine = await open_engine()
    before = layer_dirs(engine)
    op = engine.import_image({"registry": {"url": f"oci:{big_layout}:big"}})
    await _until_extracting(engine, op.uuid)
    await engine.close()
    engine = await open_engine()
    done = engine.store.get_operation(op.uuid)
    assert done.status is OperationStatus.FAILED and "engine stopped" in done.error, done.error
    assert layer_dirs(engine) == before and leftovers(engine) == []


async def test_restart_fails_an_interrupted_import_and_sweeps_its_files(open_engine: OpenEngine,
                                                                        tmp_path: Path) -> None:
    engine = await open_engine()
    whiteout_layout(tmp_path / "layout")
    ok = await imported(engine, f"oci:{tmp_path / 'layout'}:t1")
    kept = layer_dirs(engine)
    await engine.close()
    # What an engine killed mid-import leaves: the operation EXECUTING, a half-fetched blob and a partial
    # layer in imports/, a finished layer recorded by diff id that no image uses yet.
    state = tmp_path / "state"
    store = Store(state / "engine.db")
    op_uuid = str(uuid.uuid4())
    store.add_operation(Operation(uuid=op_uuid, kind="image_import", status=OperationStatus.PENDING,
                                  created_at=time.time(), image_uuid=None,
                                  request={"registry": {"url": "oci:/x"}, "tag": None, "timeout": 300}))
    store.update_operation(op_uuid, status=OperationStatus.EXECUTING, started_at=time.time())
    (state / "imports" / op_uuid / "layer-x").mkdir(parents=True)
    (state / "imports" / op_uuid / "blob-0").write_bytes(b"partial")
    (state / "layers" / "orphan").mkdir()
    store.record_layer_digest("sha256:" + "1" * 64, "orphan", 0)
    store.close()

    engine = await open_engine(name="state")
    op = engine.store.get_operation(op_uuid)
    assert op.status is OperationStatus.FAILED and "engine restarted" in op.error
    assert [e.type for e in engine.store.events(op_uuid)] == ["completion"]
    assert leftovers(engine) == []
    assert layer_dirs(engine) == kept
    assert engine.store.layer_by_diff_id("sha256:" + "1" * 64) is None
    assert stdout(await sh(engine, ok.result_image_uuid, "cat /etc/changed")) == "new\n"  # live layers kept


async def test_a_chain_deeper_than_the_squash_depth_is_squashed(open_engine: OpenEngine, tmp_path: Path) -> None:
    engine = await open_engine(EngineConfig(squash_at=4))
    layers: list[Any] = [busybox_layer(**{"data": DIR, "opt": DIR, "opt/base": b"b\n"})]
    layers += [{f"data/f{i}": f"{i}\n".encode()} for i in range(8)]
    # a delete and a replaced directory in the middle (squashed), then a change on top
    layers += [{"data/f5": WHITEOUT}, {"opt": OPAQUE, "opt/mid": b"m\n"}, {"data/f3": b"changed\n"}]
    write_layout(tmp_path / "deep", layers)
    op = await imported(engine, f"oci:{tmp_path / 'deep'}")
    assert op.status is OperationStatus.SUCCESS, op.error
    image = engine.store.get_image(op.result_image_uuid)
    assert len(image.layers) <= 4
    assert stdout(await sh(engine, image.uuid, "cat /data/f0 /data/f3 /data/f7; ls /data; ls /opt")) == \
        "0\nchanged\n7\n" + "".join(f"f{i}\n" for i in range(8) if i != 5) + "mid\n"
    # inspect (a read-only overlay in a helper) sees the same tree
    listing = await engine.list_directory(image, "/opt")
    assert [e["path"].rsplit("/", 1)[-1] for e in listing["files"]] == ["mid"]


async def test_rootfs_tarball_and_directory(engine: Engine, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hello").write_text("from a dir\n")
    (tree / "bin").mkdir()
    (tree / "bin/busybox").write_bytes(busybox_bytes())
    os.chmod(tree / "bin/busybox", 0o755)
    for applet in ("sh", "cat"):
        os.symlink("busybox", tree / "bin" / applet)
    op = await imported(engine, f"rootfs:{tree}", tag="from-dir")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(await sh(engine, "tag:from-dir", "cat /etc/hello")) == "from a dir\n"
    with tarfile.open(tmp_path / "tree.tar.gz", "w:gz") as tar:
        tar.add(tree, arcname=".")
    op = await imported(engine, f"rootfs:{tmp_path / 'tree.tar.gz'}", tag="from-tar")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(await sh(engine, "tag:from-tar", "cat /etc/hello")) == "from a dir\n"
    missing = await imported(engine, f"rootfs:{tmp_path / 'missing'}")
    assert missing.status is OperationStatus.FAILED and "no such rootfs" in missing.error
    assert leftovers(engine) == []


def test_a_state_dir_from_before_imports_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "engine.db")
    db.execute("CREATE TABLE images (uuid TEXT PRIMARY KEY, created_at REAL NOT NULL, parent TEXT, operation_uuid TEXT,"
               " layers TEXT NOT NULL, env TEXT NOT NULL DEFAULT '{}', workdir TEXT NOT NULL DEFAULT '',"
               " size INTEGER NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO images(uuid, created_at, layers) VALUES ('a', 1, '[\"l1\"]')")
    db.commit()
    db.close()
    store = Store(tmp_path / "engine.db")
    try:
        old = store.get_image("a")
        assert old.layers == ("l1",) and old.user == "" and old.config_workdir == ""
        assert store.referenced_layers() == {"l1"}
        assert store.record_layer_digest("sha256:" + "2" * 64, "l1", 5) == ("l1", 5)
    finally:
        store.close()
    Store(tmp_path / "engine.db").close()  # a second open migrates nothing twice
