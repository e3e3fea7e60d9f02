"""Commit cost of a 1-file / 10,000-file / 1 GB change vs a naive full-copy snapshot of the same image.

Base image: busybox (Debian's busybox-static, as `ensure_busybox` builds it) plus copies of the host's
/usr/lib/python3.11 and /usr/lib/python3 under /usr/lib, imported with `engine.import_rootfs`: about
100 MB in ~5,000 entries, a size where a full copy is measurable. Built offline in a few seconds.

Engine side (what is timed): every change is made by a real non-disposable `engine.run` from the base image.
`Engine._commit` of that engine instance is wrapped with a timer, so the figure is exactly the engine's commit
step on the upper dir that real run produced: `layers.scan_upper` (in a thread) + `os.rename` of the upper dir
into layers/ + fsync of layers/ + the image row. Sandbox start, the command and the run-dir cleanup are not
part of it. `layers.scan_upper` and `layers.fsync_dir` are wrapped too, to split the figure into parts.
(The alternative, `engine.run` minus a disposable run of the same command, subtracts two noisy numbers that
are 100-1000x larger than a 1-file commit, so it cannot resolve one.)

Baseline (full copy): what a naive engine does per snapshot, `cp -a` of the whole image tree including the
change. The child image's tree is first laid out as one plain directory (untimed: that is the naive engine's
image), by hard-linking its layers bottom-up with `layers.squash_layers`; that equals the merged view here
because these changes only add files (no whiteouts). Then `shutil.copytree(image, snapshot, symlinks=True)`
of it is timed: a real copy of every byte. Page cache is warm for both sides.
Goal: 1-file commit <= 5 ms and >= 50x faster than the full copy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

from common import BenchEngine, check, header, median, ms, temp_engine, verdict

import contree_tui.engine.layers as layerfs
from contree_tui.engine.models import Image

PYTHON_TREES = ("/usr/lib/python3.11", "/usr/lib/python3")
BIG_FREE_BYTES = 5 << 30
CASES: list[tuple[str, str, int, int]] = [
    # name, shell command, engine runs, full copies
    ("1 file", "echo hello > /root/one", 20, 2),
    ("10,000 files", "mkdir /root/many && cd /root/many && i=0 && "
                     "while [ $i -lt 10000 ]; do echo 0123456789 > f$i; i=$((i+1)); done", 2, 1),
    ("1 GB file", "dd if=/dev/zero of=/root/big bs=1000000 count=1000 2>/dev/null", 1, 1),
]


class CommitTimer:
    """Wraps one engine's commit (RunCommit.commit, and the layer functions it calls) to time each commit and
    its parts."""

    def __init__(self, bench: BenchEngine) -> None:
        self.committer = bench.engine.instances.commits
        self.commits: list[float] = []
        self.scans: list[float] = []
        self.fsyncs: list[float] = []
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> CommitTimer:
        original_commit = self.committer.commit

        async def commit(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original_commit(*args)
            finally:
                self.commits.append(time.perf_counter() - started)

        self._patch(self.committer, "commit", commit)
        self._patch(layerfs, "scan_upper", self._timing(layerfs.scan_upper, self.scans))
        self._patch(layerfs, "fsync_dir", self._timing(layerfs.fsync_dir, self.fsyncs))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        if "commit" in vars(self.committer):
            del self.committer.commit

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    @staticmethod
    def _timing(fn: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                into.append(time.perf_counter() - started)

        return wrapper

    def reset(self) -> None:
        self.commits.clear()
        self.scans.clear()
        self.fsyncs.clear()


def build_base_rootfs(out: str) -> None:
    layerfs.build_busybox_rootfs(shutil.which("busybox") or "/bin/busybox", out)
    for tree in PYTHON_TREES:
        if os.path.isdir(tree):
            shutil.copytree(tree, os.path.join(out, tree.lstrip("/")), symlinks=True)


def tree_stats(path: str) -> tuple[int, int]:
    entries = size = 0
    for dirpath, dirnames, filenames in os.walk(path):
        entries += len(dirnames) + len(filenames)
        for name in filenames:
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return entries, size


def full_copy_times(bench: BenchEngine, image: Image, copies: int) -> list[float]:
    naive_image = bench.scratch("naive-image")
    layerfs.squash_layers([bench.engine.layer_path(layer) for layer in image.layers], naive_image)
    times = []
    try:
        for _ in range(copies):
            snapshot = bench.scratch("naive-snapshot")
            started = time.perf_counter()
            shutil.copytree(naive_image, snapshot, symlinks=True)
            times.append(time.perf_counter() - started)
            shutil.rmtree(snapshot)
    finally:
        shutil.rmtree(naive_image, ignore_errors=True)
    return times


async def main() -> int:
    header("bench_commit: commit of a change vs a full-copy snapshot")
    async with temp_engine() as bench:
        engine = bench.engine
        rootfs = bench.scratch("rootfs")
        await asyncio.to_thread(build_base_rootfs, rootfs)
        entries, size = tree_stats(rootfs)
        base = await engine.import_rootfs(rootfs, tag="bench/python-base")
        shutil.rmtree(rootfs)
        print(f"base image: busybox + {' + '.join(PYTHON_TREES)}: {entries} entries, {size / 1e6:.0f} MB")
        free = shutil.disk_usage(bench.tmp).free
        results: list[tuple[str, float, float]] = []
        with CommitTimer(bench) as timer:
            # Warm-up: the first commit of a process pays for the thread pool and cold code paths.
            check(await engine.run({"image": base.uuid, "command": "echo warm > /root/warm", "shell": True}))
            for name, command, runs, copies in CASES:
                if name.startswith("1 GB") and free < BIG_FREE_BYTES:
                    print(f"{name:>12}: skipped, only {free / 2**30:.1f} GiB free (needs 5 GiB)")
                    continue
                timer.reset()
                run_times = []
                child: Image | None = None
                layer_bytes = 0
                for _ in range(runs):
                    started = time.perf_counter()
                    op = await engine.run({"image": base.uuid, "command": command, "shell": True})
                    run_times.append(time.perf_counter() - started)
                    check(op)
                    child = engine.store.get_image(op.result_image_uuid or "")
                    layer_bytes = op.image_size or 0
                assert child is not None and len(timer.commits) == runs
                commit = median(timer.commits)
                copy_times = await asyncio.to_thread(full_copy_times, bench, child, copies)
                copy = median(copy_times)
                results.append((name, commit, copy))
                print(f"{name:>12}: commit {ms(commit)} (median of {runs}; scan_upper {ms(median(timer.scans))}, "
                      f"fsync layers/ {ms(median(timer.fsyncs))}) | whole engine.run {ms(median(run_times))} | "
                      f"layer {layer_bytes / 1e3:,.0f} kB")
                print(f"{'':>12}  full copy {ms(copy)} (median of {copies}) -> full copy / commit = "
                      f"{copy / commit:.0f}x")
    one_file = next((r for r in results if r[0] == "1 file"), None)
    if one_file:
        _, commit, copy = one_file
        ok = commit <= 0.005 and copy / commit >= 50
        print(f"goal (1-file commit <= 5 ms and >= 50x faster than a full copy): {ms(commit)}, "
              f"{copy / commit:.0f}x: {verdict(ok)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
