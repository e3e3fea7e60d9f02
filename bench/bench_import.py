"""Registry import of a ~50 MB multi-layer image vs `skopeo copy` + `umoci unpack` of the same image.

The image: a busybox base layer and 3 layers of 16 incompressible 1 MiB files each (os.urandom, so gzip
cannot shrink them: ~49 MiB of blobs), built as an OCI layout and pushed with skopeo to Debian's
docker-registry on 127.0.0.1 (plain HTTP, its storage on the same disk as everything else).

Engine side (timed): `engine.import_image({"registry": {"url": "docker://127.0.0.1:PORT/bench/app:v1"}})`
to SUCCESS on a fresh state dir each round: resolve (manifest + config), every layer streamed to disk with
its digest verified, extracted by the confined helper with its diff id checked, the image recorded.
Baseline (same run, same registry, rounds alternating with the engine's): `skopeo copy docker://... oci:DIR`
(download + digest checks, as a fresh pull) then `umoci unpack --image DIR:v1 BUNDLE` (extraction into a
rootfs), the usual daemonless way to turn a registry image into a directory. Page cache is warm for both.
Then: re-importing the same manifest digest (the engine answers with the image it has: manifest and config
are read again, no layer), and importing a second image built on the same three base layers plus one 2 MiB
layer: the bytes the registry sent for it (its access log) against that image's total blob bytes.
Goal: import <= 1x the baseline; re-import <= 50 ms; the second image fetches only its own layer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import header, median, ms, temp_engine, verdict

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.images.busybox_layouts import busybox_layer
from tests.images.oci_build import File, write_layout
from tests.images.registry import Registry, have_registry

ROUNDS = 3
REIMPORTS = 10
FILES_PER_LAYER = 16
FILE_BYTES = 1 << 20


def data_layer(name: str) -> dict[str, object]:
    return {f"data/{name}/f{i:02d}": File(os.urandom(FILE_BYTES)) for i in range(FILES_PER_LAYER)}


async def import_once(engine: Engine, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    op = engine.import_image({"registry": {"url": url}, "timeout": 600})
    op = await engine.imports.wait(op.uuid)
    elapsed = time.perf_counter() - started
    if op.status != OperationStatus.SUCCESS:
        raise SystemExit(f"import failed: {op.status.value}: {op.error}")
    assert op.result_image_uuid is not None
    return elapsed, op.result_image_uuid


def baseline_once(host: str, scratch: Path) -> tuple[float, float]:
    """(skopeo copy seconds, umoci unpack seconds) into fresh directories."""
    layout, bundle = scratch / "oci", scratch / "bundle"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                    f"docker://{host}/bench/app:v1", f"oci:{layout}:v1"], check=True)
    copied = time.perf_counter()
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:v1", str(bundle)], check=True,
                   stdout=subprocess.DEVNULL)
    return copied - started, time.perf_counter() - copied


async def main() -> int:
    if not have_registry() or shutil.which("umoci") is None:
        raise SystemExit("needs docker-registry, skopeo and umoci (apt-get install docker-registry skopeo umoci)")
    with tempfile.TemporaryDirectory(prefix="contree-bench-import-") as tmp_name:
        tmp = Path(tmp_name)
        base = [busybox_layer(), data_layer("a"), data_layer("b"), data_layer("c")]
        built = write_layout(tmp / "app", base, tag="v1", env=["PATH=/bin"])
        second = write_layout(tmp / "second", [*base, {"data/new/f": File(os.urandom(2 << 20))}], tag="v1",
                              env=["PATH=/bin"])
        reg = Registry.start(tmp / "registry")
        try:
            reg.push(tmp / "app", "v1", "bench/app")
            reg.push(tmp / "second", "v1", "bench/second")
            return await measure(reg, built.blob_bytes, second.blob_bytes, tmp)
        finally:
            reg.stop()


async def measure(reg: Registry, blob_bytes: int, second_bytes: int, tmp: Path) -> int:
    header(f"registry import: {blob_bytes / (1 << 20):.1f} MiB in 4 layers from {reg.host}")
    url = f"docker://{reg.host}/bench/app:v1"
    ours, copies, unpacks = [], [], []
    for _ in range(ROUNDS):
        async with temp_engine() as bench:
            elapsed, _ = await import_once(bench.engine, url)
            ours.append(elapsed)
        copy, unpack = await asyncio.to_thread(baseline_once, reg.host, tmp / "baseline")
        copies.append(copy)
        unpacks.append(unpack)
    shutil.rmtree(tmp / "baseline", ignore_errors=True)
    baseline = [c + u for c, u in zip(copies, unpacks, strict=True)]
    ratio = median(ours) / median(baseline)
    print(f"engine import (resolve, download, verify, extract): {ms(median(ours))} "
          f"({blob_bytes / median(ours) / (1 << 20):.0f} MiB/s)  rounds: {', '.join(ms(t) for t in ours)}")
    print(f"skopeo copy + umoci unpack: {ms(median(baseline))} (copy {ms(median(copies))}, "
          f"unpack {ms(median(unpacks))})")
    print(f"ratio engine / baseline: {ratio:.2f}x  goal <= 1x: {verdict(ratio <= 1.0)}")

    async with temp_engine() as bench:
        _, image = await import_once(bench.engine, url)
        again = []
        for _ in range(REIMPORTS):
            elapsed, same = await import_once(bench.engine, url)
            assert same == image, "re-import made a new image"
            again.append(elapsed)
        ratio_again = median(again) / median(ours)
        print(f"re-import of the same digest: {ms(median(again))} (same image; {ratio_again:.3f}x a first import)  "
              f"goal <= 50 ms: {verdict(median(again) <= 0.050)}")

        before = len(reg.blob_gets("bench/second"))
        elapsed, _ = await import_once(bench.engine, f"docker://{reg.host}/bench/second:v1")
        fetched = reg.blob_gets("bench/second")[before:]
        sent = sum(size for _, size in fetched)
        print(f"second image sharing the 3 base layers: {ms(elapsed)}, {len(fetched)} blobs fetched "
              f"(config + new layer), {sent / (1 << 20):.2f} MiB of its {second_bytes / (1 << 20):.1f} MiB "
              f"({sent / second_bytes:.3f}x)  goal only the new layer: {verdict(len(fetched) == 2)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
