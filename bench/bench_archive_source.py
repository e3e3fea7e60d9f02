"""Reading an image out of a docker-archive / oci-archive: the engine's source vs skopeo doing the same job.

The image: 5 layers of 20 MB of random bytes each (uncompressed: skopeo writes docker-archive layers so),
built with tests/images/oci_build.py and written by `skopeo copy` to docker-archive: and oci-archive:.
Page cache warm for both sides (each archive is read once before timing).

Engine side, per archive (median of REPEATS): `resolve()` — the confined helper indexes the tar, the
engine reads manifest/index and config — then `fetch_blob` of every layer into fresh files (pread in 4 MiB
chunks in a thread, sha256 verified); no cached index. The index alone is timed too.
Baseline, same run: `skopeo copy ARCHIVE oci:DIR` — reads the same archive, writes and digests the same
blobs (no extraction on either side).
Goal: engine <= 1x skopeo.

Then the whole import (`engine.import_image`, a fresh engine per round: index, copy, confined extraction,
commit) vs what a user does without it: `skopeo copy ARCHIVE oci:DIR` + `umoci unpack` (median of ROUNDS);
and a re-import of the same archive (its index cached by the file's identity and ctime, its digest known:
the same image at once).
Goals: import <= 1x skopeo + umoci; re-import <= 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import header, median, ms, temp_engine, verdict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contree_tui.engine.engine import Engine
from contree_tui.engine.image_sources import open_source
from contree_tui.engine.image_sources.tar_members import TarIndexer
from contree_tui.engine.models import OperationStatus
from tests.images.oci_build import skopeo_copy, write_layout

LAYERS = 5
LAYER_BYTES = 20 << 20
REPEATS = 5
ROUNDS = 3


async def engine_read(indexer: TarIndexer, url: str, out: Path) -> tuple[float, float]:
    """(seconds for resolve + every fetch, seconds for the tar index alone)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    indexer = TarIndexer(indexer.helpers, indexer.mountpoint)  # a fresh one: no cached index
    started = time.perf_counter()
    source = open_source(url, indexer=indexer)
    try:
        image = await source.resolve()
        for n, layer in enumerate(image.layers):
            await source.fetch_blob(layer, out / f"layer-{n}", lambda _: None)
    finally:
        await source.aclose()
    total = time.perf_counter() - started
    fd = os.open(url.split(":", 2)[1], os.O_RDONLY)
    try:
        started = time.perf_counter()
        await TarIndexer(indexer.helpers, indexer.mountpoint).index(fd, os.fstat(fd), "bench", 60)  # uncached
        index = time.perf_counter() - started
    finally:
        os.close(fd)
    return total, index


def skopeo_read(url: str, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", url, f"oci:{out}:x"], check=True)
    return time.perf_counter() - started


async def main() -> None:
    async with temp_engine() as bench:
        tmp = bench.tmp
        layers = [{f"data/{n}": os.urandom(LAYER_BYTES)} for n in range(LAYERS)]
        write_layout(tmp / "layout", layers, tag="t", compression=None)
        archives = {"docker-archive": tmp / "docker.tar", "oci-archive": tmp / "oci.tar"}
        for scheme, path in archives.items():
            skopeo_copy(f"oci:{tmp / 'layout'}:t", f"{scheme}:{path}")
            path.read_bytes()  # warm the page cache
        indexer = TarIndexer(bench.engine.helpers, bench.engine._inspect_root)
        ok = True
        for scheme, path in archives.items():
            header(f"{scheme}: {LAYERS} layers x {LAYER_BYTES >> 20} MB, median of {REPEATS}")
            ours, index, theirs = [], [], []
            for _ in range(REPEATS):  # interleaved: the machine's noise hits both sides alike
                total, indexed = await engine_read(indexer, f"{scheme}:{path}", tmp / "ours")
                ours.append(total)
                index.append(indexed)
                theirs.append(await asyncio.to_thread(skopeo_read, f"{scheme}:{path}", tmp / "theirs"))
            ratio = median(ours) / median(theirs)
            print(f"  engine resolve + fetch: {ms(median(ours))}  (tar index in the helper: {ms(median(index))})")
            print(f"  skopeo copy to oci:    {ms(median(theirs))}")
            print(f"  ratio engine/skopeo: {ratio:.2f}x  goal <= 1x  {verdict(ratio <= 1)}")
            ok = ok and ratio <= 1
        for scheme, path in archives.items():
            ok = await whole_import(scheme, path, tmp) and ok
        if not ok:
            raise SystemExit(1)


async def import_once(engine: Engine, url: str) -> float:
    started = time.perf_counter()
    op = engine.import_image({"registry": {"url": url}})
    done = await engine.wait(op.uuid)
    if done.status is not OperationStatus.SUCCESS:
        raise SystemExit(f"import failed: {done.error}")
    return time.perf_counter() - started


def skopeo_and_umoci(url: str, tmp: Path) -> float:
    layout, bundle = tmp / "unpack-layout", tmp / "unpack-bundle"
    shutil.rmtree(layout, ignore_errors=True)
    shutil.rmtree(bundle, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", url, f"oci:{layout}:x"], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:x", str(bundle)], check=True, capture_output=True)
    return time.perf_counter() - started


async def whole_import(scheme: str, path: Path, tmp: Path) -> bool:
    header(f"{scheme}: the whole import, median of {ROUNDS} (a fresh engine each)")
    ours, theirs = [], []
    for _ in range(ROUNDS):
        theirs.append(await asyncio.to_thread(skopeo_and_umoci, f"{scheme}:{path}", tmp))
        async with temp_engine() as bench:
            ours.append(await import_once(bench.engine, f"{scheme}:{path}"))
    ratio = median(ours) / median(theirs)
    print(f"  engine import: {ms(median(ours))}   skopeo copy + umoci unpack: {ms(median(theirs))}   "
          f"ratio {ratio:.2f}x  goal <= 1x  {verdict(ratio <= 1)}")
    async with temp_engine() as bench:
        await import_once(bench.engine, f"{scheme}:{path}")
        again = median([await import_once(bench.engine, f"{scheme}:{path}") for _ in range(10)])
    print(f"  re-import of the same archive: {ms(again)}  goal <= 50 ms  {verdict(again <= 0.05)}")
    return ratio <= 1 and again <= 0.05


if __name__ == "__main__":
    asyncio.run(main())
