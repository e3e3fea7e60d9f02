"""Image import from an `oci:` layout (issue #11): a ~100 MB (uncompressed) 3-layer gzip image — busybox, the
host's /usr/lib/python3.11, its /usr/lib/python3/dist-packages — imported by the engine (blobs copied and
verified, each layer decompressed, hashed and extracted by a confined helper) vs `umoci unpack` of the same
layout in the same run (decompress + extract as root, no confinement, no copy), alternating, median of 3.
Then a re-import of the same manifest (same image at once) and a second image sharing the two lower layers
(only its new layer's bytes are read).

Goals: import <= 1x umoci unpack; re-import <= 50 ms; the second image copies only its new layer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import temp_engine
from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.images.busybox_layouts import busybox_layer
from tests.images.oci_build import DIR, File, Symlink, write_layout

ROUNDS = 3


def tree_layer(root: str, prefix: str) -> dict[str, Any]:
    """A layer holding the host directory `root` at `prefix` (regular files, dirs, symlinks)."""
    layer: dict[str, Any] = {}
    parts = prefix.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        layer["/".join(parts[:i])] = DIR
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        base = prefix.strip("/") if rel == "." else f"{prefix.strip('/')}/{rel}"
        for name in dirnames:
            path = os.path.join(dirpath, name)
            layer[f"{base}/{name}"] = Symlink(os.readlink(path)) if os.path.islink(path) else DIR
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                layer[f"{base}/{name}"] = Symlink(os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as fh:
                    layer[f"{base}/{name}"] = File(fh.read(), os.stat(path).st_mode & 0o777)
    return layer


async def import_once(engine: Engine, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    op = engine.import_image({"registry": {"url": url}})
    done = await engine.wait(op.uuid)
    elapsed = time.perf_counter() - started
    if done.status is not OperationStatus.SUCCESS:
        raise SystemExit(f"import failed: {done.error}")
    return elapsed, done.result_image_uuid or ""


def umoci_unpack(layout: Path, tag: str, scratch: Path) -> float:
    bundle = scratch / f"bundle-{time.monotonic_ns()}"
    started = time.perf_counter()
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)], check=True,
                   capture_output=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(bundle)
    return elapsed


async def main() -> None:
    if shutil.which("umoci") is None:
        raise SystemExit("umoci is not installed (apt-get install umoci)")
    with tempfile.TemporaryDirectory(prefix="contree-bench-oci-") as tmp_name:
        tmp = Path(tmp_name)
        python = tree_layer("/usr/lib/python3.11", "usr/lib/python3.11")
        dist = tree_layer("/usr/lib/python3/dist-packages", "usr/lib/python3/dist-packages")
        layout = tmp / "layout"
        built = write_layout(layout, [busybox_layer(), python, dist], tag="big")
        second = write_layout(layout, [busybox_layer(), python, {"etc": DIR, "etc/second": b"2\n"}], tag="second")
        raw = sum(len(v.data) for layer in (python, dist) for v in layer.values() if isinstance(v, File))
        print(f"image: 3 gzip layers, {built.blob_bytes / 1e6:.1f} MB of blobs, {raw / 1e6:.1f} MB of files")

        ours, theirs = [], []
        for _ in range(ROUNDS):
            theirs.append(umoci_unpack(layout, "big", tmp))
            async with temp_engine() as bench:
                elapsed, _ = await import_once(bench.engine, f"oci:{layout}:big")
                ours.append(elapsed)
        engine_s, umoci_s = statistics.median(ours), statistics.median(theirs)
        ratio = engine_s / umoci_s
        print(f"import   engine {engine_s * 1000:7.0f} ms   umoci unpack {umoci_s * 1000:7.0f} ms   "
              f"ratio {ratio:.2f}x  {'OK' if ratio <= 1.0 else 'MISSED'} (goal <= 1x)")

        async with temp_engine() as bench:
            engine = bench.engine
            await import_once(engine, f"oci:{layout}:big")
            again = []
            for _ in range(10):
                elapsed, _ = await import_once(engine, f"oci:{layout}:big")
                again.append(elapsed)
            reimport = statistics.median(again)
            print(f"re-import of the same manifest: {reimport * 1000:.1f} ms  "
                  f"{'OK' if reimport <= 0.05 else 'MISSED'} (goal <= 50 ms)")
            op = engine.import_image({"registry": {"url": f"oci:{layout}:second"}})
            await engine.wait(op.uuid)
            fetched = [e.data for e in engine.store.events(op.uuid)
                       if e.type == "import_progress" and e.data["phase"] == "download"]
            read = fetched[-1]["bytes_done"] if fetched else 0
            new_layer = second.blob_bytes - sum(
                (layout / "blobs/sha256" / d.split(":")[1]).stat().st_size for d in second.layer_digests[:2])
            print(f"second image sharing 2 of 3 layers: {read} bytes copied, its new layer is {new_layer} bytes  "
                  f"{'OK' if read == new_layer else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
