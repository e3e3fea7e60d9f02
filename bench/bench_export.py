"""bench_export: `contree-tui export` of a ~50 MB image in both formats, against the bare archive download.

The engine is served as a user gets it (`contree-tui engine serve`, started on demand); the client is the
one the CLI uses (a Connection over the Unix socket). The image: busybox plus 48 MB (32 MB of random bytes,
which gzip cannot shrink, and 16 MB of text, which it can) and 2,000 small files.

Baselines, same run and same client: the bare GET /v1/inspect/{uuid}/archive?path=/ streamed to a file,
plain (what both formats now fetch from the embedded engine) and gzip-encoded (the engine compressing, what
an oci-archive would otherwise reuse as its layer). What export adds: hashing, for oci-archive a gzip in a
thread overlapping the download, the outer archive, the fsync. Goals: docker-archive <= 1.3x the plain
download; oci-archive <= 1x the gzip-encoded one. Median of 3 each, alternating.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import header, median, verdict
from contree_client import operations

from contree_tui.client.connection import Connection, connect, embedded_target
from contree_tui.client.embedded import ensure_engine
from contree_tui.client.image_export import export_image

ROUNDS = 3
GOAL = 1.3
MAKE = ("head -c 32000000 /dev/urandom > /random && "
        "i=0; while [ $i -lt 16 ]; do seq 1 150000 >> /text; i=$((i+1)); done && "
        "mkdir -p /many && cd /many && i=0; while [ $i -lt 2000 ]; do echo $i > f$i; i=$((i+1)); done")


async def download(connection: Connection, uuid: str, out: Path, *, encoded: bool) -> int:
    spec = operations.build_inspect_image_archive(image_uuid=uuid, path="/")
    if not encoded:
        spec = replace(spec, headers={**spec.headers, "Accept-Encoding": "identity"})
    size = 0
    with open(out, "wb") as handle:
        async for chunk in connection.client.stream(spec, auto_decompress=False):
            handle.write(chunk)
            size += len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    return size


async def main() -> int:
    header("bench_export: export of a ~50 MB image (oci-archive, docker-archive) vs the bare archive download")
    with tempfile.TemporaryDirectory(prefix="contree-bench-export-") as tmp:
        state_dir = Path(tmp) / "engine"
        try:
            await ensure_engine(state_dir)
            connection = await connect(embedded_target(state_dir))
            client = connection.client
            busybox = await client.inspect_find_image_by_tag("busybox:latest")
            done = await client.wait_operation((await client.spawn_instance(
                MAKE, busybox, shell=True, timeout=300)).uuid, timeout=600)
            image = str(done.result_image_uuid)
            ok = True
            for fmt in ("oci-archive", "docker-archive"):
                exports, plain, encoded, size = [], [], [], 0
                for round_ in range(ROUNDS):
                    out = Path(tmp) / f"{fmt}-{round_}.tar"
                    for times, gzip in ((plain, False), (encoded, True)):
                        if gzip and fmt == "docker-archive":
                            continue
                        started = time.perf_counter()
                        await download(connection, image, out, encoded=gzip)
                        times.append(time.perf_counter() - started)
                        out.unlink()
                    started = time.perf_counter()
                    result = await export_image(connection, image, fmt, out, name="bench/export:latest")  # type: ignore[arg-type]
                    exports.append(time.perf_counter() - started)
                    size = result.archive_bytes
                    out.unlink()
                baseline = median(encoded) if encoded else median(plain)
                goal = 1.0 if encoded else GOAL
                ratio = median(exports) / baseline
                ok = ok and ratio <= goal
                gz = f", gzip-encoded {median(encoded):.2f} s" if encoded else ""
                print(f"{fmt:<15} export {median(exports):.2f} s ({size / 1e6:.1f} MB); download plain "
                      f"{median(plain):.2f} s{gz}: {ratio:.2f}x (goal <= {goal}x) {verdict(ratio <= goal)}",
                      flush=True)
            await connection.aclose()
        finally:
            subprocess.run([sys.executable, "-m", "contree_tui.cli", "engine", "stop", "--state-dir",
                            str(state_dir)], capture_output=True, check=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
