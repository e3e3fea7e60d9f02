"""`rootfs:` tarball import (confined helper, xattrs restored, diff id and source digest hashed) vs GNU
`tar --xattrs -xpf` of the same tar into a directory as root, and the re-import of the same tar.

The tar: the newest Debian bootstrap in the user's cache (`contree-tui engine bootstrap debian`, ~158 MB,
~8,900 files) when there is one, else a generated one (busybox + 2,000 files of 1-64 KiB). Engine side
(timed): `import_image({"registry": {"url": "rootfs:TAR"}})` to SUCCESS on a fresh state dir each round.
Baseline (same run, rounds alternating): `tar --xattrs --xattrs-include=* -xpf TAR -C DIR` into a fresh dir on
the same filesystem, as host root, with no confinement and no hashing. Page cache warm for both.
Then the same tar again into the same engine: hashed (sha256 of the file, its source digest), found, no
extraction.
Goal: import <= 2x the baseline (it hashes twice and crosses a helper boundary); re-import <= 0.2x import.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import header, median, ms, temp_engine, verdict

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.images.busybox_layouts import busybox_bytes

ROUNDS = 3


def the_tar(scratch: Path) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "contree-tui" / "bootstrap"
    tars = sorted(cache.glob("*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    if tars:
        return tars[0]
    path = scratch / "generated.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(busybox_bytes()), 0o755
        tar.addfile(info, io.BytesIO(busybox_bytes()))
        for i in range(2000):
            data = os.urandom(1024 * (1 + i % 64))
            info = tarfile.TarInfo(f"data/d{i % 50}/f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


async def import_once(engine: Engine, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    op = await engine.imports.wait(engine.import_image({"registry": {"url": url}, "timeout": 600}).uuid)
    elapsed = time.perf_counter() - started
    if op.status != OperationStatus.SUCCESS or op.result_image_uuid is None:
        raise SystemExit(f"import failed: {op.status.value}: {op.error}")
    return elapsed, op.result_image_uuid


async def main() -> None:
    engine_times, baseline_times, again_times = [], [], []
    for _ in range(ROUNDS):
        async with temp_engine() as bench:
            tar = the_tar(bench.tmp)
            if not engine_times:
                header(f"rootfs: import of {tar.name}: {tar.stat().st_size / (1 << 20):.0f} MiB")
            out = Path(bench.scratch("baseline"))
            out.mkdir()
            started = time.perf_counter()
            subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-xpf", str(tar), "-C", str(out)], check=True)
            baseline_times.append(time.perf_counter() - started)
            shutil.rmtree(out)
            elapsed, image = await import_once(bench.engine, f"rootfs:{tar}")
            engine_times.append(elapsed)
            again, same = await import_once(bench.engine, f"rootfs:{tar}")
            assert same == image, "the same tar made another image"
            again_times.append(again)
    ratio = median(engine_times) / median(baseline_times)
    print(f"engine import      {ms(median(engine_times))}")
    print(f"tar -xpf baseline  {ms(median(baseline_times))}")
    print(f"ratio engine / baseline: {ratio:.2f}x  goal <= 2x: {verdict(ratio <= 2.0)}")
    again_ratio = median(again_times) / median(engine_times)
    print(f"re-import (same tar, hashed, no extraction) {ms(median(again_times))}: {again_ratio:.3f}x the import  "
          f"goal <= 0.2x: {verdict(again_ratio <= 0.2)}")


if __name__ == "__main__":
    asyncio.run(main())
