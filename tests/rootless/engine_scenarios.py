"""Engine scenarios run rootless: `python -m tests.rootless.engine_scenarios NAME STATE_DIR [ARG]`, as a normal
user inside the namespace the rootless entry gives (tests/rootless/engine_namespace.py starts it). Each scenario
drives the engine library and prints one JSON object (its observations) as the last line of stdout, which the
test asserts on; nothing here asserts, so a failing step shows up as a wrong value, with the error text.

Only the standard library, the product and tests/images are imported: the user's Python has no pytest.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import sys
import tarfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from contree_tui.engine import privilege
from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.grep import GrepQuery
from contree_tui.engine.models import EngineError, Operation
from contree_tui.engine.output import decode_stream
from contree_tui.engine.pid_namespace import enter_own_pid_namespace
from contree_tui.engine.rootless_entry import enter_rootless_namespace
from tests.images.busybox_layouts import BASE_FILES, TOP, busybox_layer
from tests.images.oci_build import File, Hardlink, write_layout

OFFLINE = {"enabled": False}
Scenario = Callable[[Engine, Path], Awaitable[dict[str, Any]]]


def _config(**fields: Any) -> EngineConfig:
    # cgroups: this VM's v1 hierarchy is root's (sandbox/limits.py, r-limits' part of #14)
    return EngineConfig(cgroups=False, **fields)


async def sh(engine: Engine, image: str, script: str, **fields: Any) -> Operation:
    fields.setdefault("networking", OFFLINE)
    return await engine.run({"image": image, "command": script, "shell": True, **fields})


def out(op: Operation) -> dict[str, Any]:
    """What a run shows: status, exit code, stdout, stderr, error, result image."""
    result = op.result or {}
    return {"status": op.status.value, "error": op.error, "image": op.result_image_uuid,
            "exit": (result.get("state") or {}).get("exit_code"),
            "timed_out": (result.get("state") or {}).get("timed_out"),
            "stdout": decode_stream(result["stdout"]).decode(errors="replace") if result else "",
            "stderr": decode_stream(result["stderr"]).decode(errors="replace") if result else ""}


def _owner(path: Path) -> list[int]:
    st = path.lstat()
    return [st.st_uid, st.st_gid]


# -- scenarios --------------------------------------------------------------------------------------------

async def runs(engine: Engine, work: Path) -> dict[str, Any]:
    """Shell runs, exit codes, stdin, a chain of commits, a branch, a disposable run, injected files with
    owners, the helpers (list, read, archive, grep) and a delete."""
    seen: dict[str, Any] = {"rootless": privilege.running_rootless(), "ids": engine.users.ids.count
                            if engine.users else None}
    base = (await engine.ensure_busybox()).uuid
    seen["hello"] = out(await sh(engine, base, "echo hello; id -u; cat /proc/self/uid_map"))
    seen["exit3"] = out(await sh(engine, base, "echo err >&2; exit 3", disposable=True))
    # as in root mode: the syscall filter on pid 1 and the command, no SYS_ADMIN or MKNOD (CapBnd/CapEff in
    # hex), no mount, no unshare; and the sandbox's root has no capability over the engine's namespaces
    seen["confined"] = out(await sh(engine, base, "grep -E '^(Seccomp|CapBnd|CapEff):' /proc/self/status; "
                                    "grep -E '^Seccomp:' /proc/1/status; mkdir -p /mnt/t; "
                                    "mount -t tmpfs none /mnt/t 2>/dev/null && echo mount-ok || echo mount-refused; "
                                    "unshare -m true 2>/dev/null && echo unshare-ok || echo unshare-refused; "
                                    "mknod /tmp/d b 8 0 2>/dev/null && echo mknod-ok || echo mknod-refused",
                                    disposable=True))
    seen["stdin"] = out(await engine.run({"image": base, "command": "cat", "stdin": {"value": "from stdin\n"},
                                         "networking": OFFLINE, "disposable": True}))
    # a chain: each step changes the previous image (a write, a delete of a lower dir, an owner change)
    step1 = out(await sh(engine, base, "mkdir -p /data && echo one > /data/log && chown 1000:1000 /data/log"))
    step2 = out(await sh(engine, step1["image"], "echo two >> /data/log && rm -rf /usr/sbin && "
                         "mkdir /etc/fresh && touch /etc/fresh/a"))
    step3 = out(await sh(engine, step2["image"], "rm -rf /etc/fresh && mkdir /etc/fresh && touch /etc/fresh/b; "
                         "stat -c '%u:%g' /data/log; cat /data/log; ls /usr/sbin 2>&1 | head -1; ls /etc/fresh"))
    seen["chain"] = [step1, step2, step3]
    # a branch: two children of step1, each sees only its own write
    left = out(await sh(engine, step1["image"], "echo left > /data/side"))
    right = out(await sh(engine, step1["image"], "echo right > /data/side"))
    seen["branch"] = [out(await sh(engine, image, "cat /data/side; cat /data/log", disposable=True))
                      for image in (left["image"], right["image"])]
    seen["parent_untouched"] = out(await sh(engine, step1["image"], "ls /data", disposable=True))
    disposable = out(await sh(engine, base, "echo gone > /etc/disposable; cat /etc/disposable", disposable=True))
    seen["disposable"] = disposable
    await engine.instances.trash.emptied()
    seen["runs_left"] = sorted(os.listdir(engine.state.runs))
    # injected files, owners included, then a download of them through the helpers
    blob = engine.add_file(b"injected\n")
    injected = out(await sh(engine, base, "stat -c '%n %a %u:%g' /app/*; cat /app/secret",
                            files={"/app/secret": {"uuid": blob.uuid, "mode": "0600", "uid": 1000, "gid": 1001},
                                   "/app/tool": {"uuid": blob.uuid, "mode": "0755"}}))
    seen["files"] = injected
    image = engine.store.get_image(injected["image"])
    top = Path(engine.layer_path(image.layers[-1]))
    seen["files_on_disk"] = {"secret": _owner(top / "app/secret"), "tool": _owner(top / "app/tool")}
    seen["listing"] = sorted(f"{e['path']} {e['owner']}" for e in (await engine.list_directory(image, "/app"))["files"])
    seen["read"] = (await engine.read_file(image, "/app/secret")).decode()
    archive = await engine.archive(image, "/app")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        seen["archive"] = sorted((m.name, m.uid, m.gid) for m in tar.getmembers())
    found = await engine.grep(image, GrepQuery(patterns=("injected",), paths=("/app",)))
    seen["grep"] = sorted(str(m.get("path")) for m in found.get("matches", []))
    # a rootfs tarball (the import helper, nested), owners kept
    tarball = work / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        for name, uid in (("bin", 0), ("srv", 0), ("srv/daemon", 33)):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, uid
            tar.addfile(info)
        data = (Path(engine.layer_path(engine.store.get_image(base).layers[0])) / "bin/busybox").read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.mode, info.size = 0o755, len(data)
        tar.addfile(info, io.BytesIO(data))
        for applet in ("sh", "stat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    rootfs = await engine.import_rootfs(tarball, tag="rootfs")
    seen["rootfs"] = out(await sh(engine, rootfs.uuid, "stat -c '%n %u:%g' /srv/daemon", disposable=True,
                                  env={"PATH": "/bin"}))
    # delete: the child image's own layer goes, the base stays
    child = out(await sh(engine, base, "echo x > /etc/doomed"))
    doomed = engine.store.get_image(child["image"]).layers[-1]
    seen["deleted_layers"] = await engine.delete_image(child["image"])
    seen["deleted_layer_was_top"] = seen["deleted_layers"] == [doomed]
    seen["layer_gone"] = not os.path.exists(engine.layer_path(doomed))
    return seen


async def kill(engine: Engine, work: Path) -> dict[str, Any]:
    """A timeout and a cancel end a run and every process in it."""
    base = (await engine.ensure_busybox()).uuid
    started = time.monotonic()
    timed = out(await sh(engine, base, "sleep 30 & sleep 30; echo never", timeout=1))
    took = time.monotonic() - started
    op = await engine.spawn({"image": base, "command": "sleep 60", "shell": True, "networking": OFFLINE})
    while engine.instance_run(op.uuid) is None or not os.listdir(engine.state.runs):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    await engine.cancel(op.uuid)
    cancelled = out(await engine.wait(op.uuid))
    return {"timed": timed, "took": took, "cancelled": cancelled}


async def squash(engine: Engine, work: Path) -> dict[str, Any]:
    """A chain past EngineConfig.squash_at (64): it stays short, and every step still shows."""
    image = (await engine.ensure_busybox()).uuid
    depths = []
    steps = engine.config.squash_at + 6
    for i in range(1, steps + 1):
        op = out(await sh(engine, image, f"echo {i} >> /log; rm -f /step-{i - 1}; touch /step-{i}"))
        if op["status"] != "SUCCESS":
            return {"failed_at": i, "op": op}
        image = op["image"]
        depths.append(len(engine.store.get_image(image).layers))
    final = out(await sh(engine, image, "wc -l < /log; ls / | grep step", disposable=True))
    return {"steps": steps, "max_depth": max(depths), "final": final,
            "squashed": depths[-1] < steps + 1}


async def import_whiteouts(engine: Engine, work: Path) -> dict[str, Any]:
    """An OCI archive whose top layer deletes a file (whiteout) and replaces a directory (opaque)."""
    layout = work / "layout"
    # a third layer hard-links a file of the base (lower_links.py: a helper with both views, nested)
    write_layout(layout, [busybox_layer(**BASE_FILES), TOP, {"etc/linked": Hardlink("etc/kept")}], tag="t1")
    op = await engine.wait(engine.import_image({"registry": {"url": f"oci:{layout}:t1"}, "tag": "wo"}).uuid)
    if op.result_image_uuid is None:
        return {"import": op.status.value, "error": op.error}
    image = engine.store.get_image(op.result_image_uuid)
    top = Path(engine.layer_path(image.layers[-2]))
    view = out(await sh(engine, "tag:wo", "ls /opt; cat /etc/changed; test -e /etc/gone || echo gone-is-gone; "
                        "cat /etc/linked; "
                        "rm -rf /opt && mkdir /opt && echo again > /opt/again"))
    again = out(await sh(engine, view["image"], "ls /opt", disposable=True))
    return {"import": op.status.value, "error": op.error,
            "opaque_xattrs": sorted(k for k in os.listxattr(top / "opt") if "overlay" in k),
            "whiteout": stat.S_ISCHR((top / "etc/gone").lstat().st_mode) and (top / "etc/gone").lstat().st_rdev == 0,
            "view": view, "again": again}


def _pax(name: str, xattrs: dict[str, bytes], *, directory: bool = False, data: bytes = b"x\n") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode, info.size = (0o755, 0) if directory else (0o644, len(data))
    info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
    return info


async def overlay_xattrs(engine: Engine, work: Path) -> dict[str, Any]:
    """A crafted layer planting overlay's own xattrs (opaque, redirect, origin; user.* and trusted.*): none is
    applied, the import names them, and the lower files they would hide stay visible."""
    buf = io.BytesIO()
    planted = {"user.overlay.opaque": b"y", "trusted.overlay.opaque": b"y", "user.overlay.redirect": b"/etc",
               "user.overlay.origin": b"\x00"}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_pax("data", planted, directory=True))
        tar.addfile(_pax("data/top", {"user.overlay.redirect": b"/etc/passwd", "user.kept": b"ok"}), io.BytesIO(b"x\n"))
    layout = work / "layout"
    write_layout(layout, [busybox_layer(**{"data/lower": b"lower\n"}), buf.getvalue()], tag="x")
    op = await engine.wait(engine.import_image({"registry": {"url": f"oci:{layout}:x"}, "tag": "planted"}).uuid)
    if op.result_image_uuid is None:
        return {"import": op.status.value, "error": op.error}
    top = Path(engine.layer_path(engine.store.get_image(op.result_image_uuid).layers[-1]))
    log = " ".join(e.data.get("message", "") for e in engine.store.events(op.uuid) if e.type == "import_log")
    view = out(await sh(engine, "tag:planted", "ls /data; cat /data/top", disposable=True))
    return {"import": op.status.value, "log": log, "view": view,
            "on_disk": {"data": sorted(os.listxattr(top / "data")), "top": sorted(os.listxattr(top / "data/top"))}}


async def big_ids(engine: Engine, work: Path) -> dict[str, Any]:
    """A layer with a file owned by an id the namespace does not map: refused by name, nothing left behind."""
    before = sorted(os.listdir(engine.state.layers))
    layout = work / "layout"
    limit = engine.users.ids.count if engine.users else 65536
    write_layout(layout, [busybox_layer(**{"srv/owned": File(b"x\n", uid=limit + 4, gid=7)})], tag="big")
    op = await engine.wait(engine.import_image({"registry": {"url": f"oci:{layout}:big"}}).uuid)
    await engine.instances.trash.emptied()  # scratch dirs go in the background
    return {"status": op.status.value, "error": op.error, "limit": limit,
            "layers_before": before, "layers_after": sorted(os.listdir(engine.state.layers)),
            "runs_after": sorted(os.listdir(engine.state.runs))}


async def network(engine: Engine, work: Path) -> dict[str, Any]:
    """A networked run (pasta started from inside the namespace) runs the shell line in `work/fetch` (a fetch
    from the test's host); the same line offline cannot reach it."""
    base = (await engine.ensure_busybox()).uuid
    fetch = (work / "fetch").read_text()
    try:
        online: dict[str, Any] = out(await sh(engine, base, fetch, networking={"enabled": True}, disposable=True,
                                              timeout=30))
    except EngineError as exc:
        online = {"refused": str(exc)}
    offline = out(await sh(engine, base, "trap '' PIPE; " + fetch, disposable=True, timeout=30))
    return {"available": engine.network_available, "online": online, "offline": offline}


async def crash_leftovers(engine: Engine, work: Path) -> dict[str, Any]:
    """What a crashed engine leaves in runs/ (an overlay work/work dir of mode 000 holding a dir of another
    id, a run's upper with a file of a sandbox user) is removed at the next start (main reopens the engine),
    inside the namespace: as the user outside, `rm -rf` of it fails (sandbox-runtime.md §1.4)."""
    base = (await engine.ensure_busybox()).uuid
    kept = out(await sh(engine, base, "echo kept > /etc/kept"))
    await engine.instances.trash.emptied()  # the run's own scratch: removed in the background
    left = engine.state.runs / "0123-crashed"
    (left / "work/work/sub").mkdir(parents=True)
    (left / "upper/etc").mkdir(parents=True)
    (left / "upper/etc/f").write_text("x")
    os.chown(left / "upper/etc/f", 4242, 4242)
    os.chown(left / "work/work/sub", 1000, 1000)
    os.chmod(left / "work/work/sub", 0)
    os.chmod(left / "work/work", 0)
    (work / "kept").write_text(kept["image"] or "")
    return {"left": sorted(os.listdir(engine.state.runs))}


async def after_crash(engine: Engine, work: Path) -> dict[str, Any]:
    kept = (work / "kept").read_text()
    result = out(await sh(engine, kept, "cat /etc/kept", disposable=True))
    await engine.instances.trash.emptied()  # this run's own scratch goes in the background (CI: still listed)
    return {"kept": result, "runs_after": sorted(os.listdir(engine.state.runs))}


SCENARIOS: dict[str, Scenario] = {f.__name__: f for f in (runs, kill, squash, import_whiteouts, overlay_xattrs,
                                                            big_ids, network, crash_leftovers, after_crash)}


async def main(name: str, state: str, work: str) -> dict[str, Any]:
    engine = await Engine.open(state, _config())
    try:
        return await SCENARIOS[name](engine, Path(work))
    finally:
        await engine.close()


if __name__ == "__main__":
    enter_rootless_namespace()  # as `engine serve` does; nothing to do under a stand-in (uid 0 there already)
    arguments = sys.argv[1:]
    if arguments[0] == "--own-pid-namespace":  # what the entry does (pid_namespace.py), not the stand-in
        arguments.pop(0)
        relay = enter_own_pid_namespace()
        print(f"relay {relay}, engine pid {os.getpid()}", file=sys.stderr)
    print(json.dumps(asyncio.run(main(*arguments[:3])), default=str))
