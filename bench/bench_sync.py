"""Directory sync of a 10,000-file tree: the first sync (vs one probe and one upload at a time), and the
re-sync after a 1-file change (vs a full re-scan), same run.

The engine is served the way a user gets it (`contree-tui engine serve`, started on demand, its own process);
the sync is the client's (contree_tui.client.sync) over the official contree-client on the Unix socket.

Setup: 10,000 small distinct files in 40 x 7 directories; one full sync uploads them all (timed, for
context). Then, each time after changing one file's content (a new line appended):
  watch    sync(changed=[that file]): what the watcher does with the path watchfiles reported
  walk     sync(): a walk of the whole tree with the stat cache (the CLI's `sync`, a restart, the watcher's
           periodic full scan)
  rescan   a Syncer with no stat cache (it still knows which blobs the server holds): hashes every file
  cold     a Syncer that remembers nothing: hashes every file and asks the server about each one
Each timed from the call to the returned state, median of REPEATS (cold: once).
Goal: watch re-sync <= 50 ms with 1 file hashed and 1 upload.

First sync (issue #12): a fresh 10,000-file tree (contents the engine has never seen) synced by a Syncer that
remembers nothing, with the default transfer policy (client/blob_upload.py: batches on this engine), with the
official API only (what a hosted Contree offers: one upload per file, 32 in flight, no probe for small files),
and, as the baseline, SERIAL (one probe and one upload at a time, as before #12) on a SERIAL_FILES subset,
scaled to 10,000 files. Then the same over a transport that adds LATENCY to every request (a wrapper around
the httpx transport, given to connect(wrap_transport=...); it sleeps while holding the connection, as a round
trip would), the serial baseline on LATENCY_SERIAL_FILES. Goals: <= 3 s on the engine, <= 30 s with 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import header, median, ms, spread, verdict

from contree_tui.client.blob_upload import SERIAL, TransferPolicy
from contree_tui.client.connection import Connection, connect, embedded_target
from contree_tui.client.sync import Syncer, SyncReport
from contree_tui.client.sync_cache import SyncCache

FILES = 10_000
REPEATS = 7
GOAL_SECONDS = 0.050
FIRST_GOAL = 3.0
LATENCY = 0.050
LATENCY_GOAL = 30.0
SERIAL_FILES = 1_000  # the serial baseline's tree (10,000 one at a time: ~1 min here, ~17 min at 50 ms)
LATENCY_SERIAL_FILES = 200
OFFICIAL_API = TransferPolicy(batch=False)


def make_tree(root: Path, count: int = FILES, salt: str = "") -> list[Path]:
    paths = []
    for i in range(count):
        path = root / f"pkg{i % 40}" / f"sub{i % 7}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}{salt}\n" + "VALUE = 1\n" * (i % 60))
        paths.append(path)
    time.sleep(0.02)  # one clock tick: no file is "racily clean" when first hashed (see sync_cache.RACY_NS)
    return paths


class DelayedTransport(httpx.AsyncBaseTransport):
    """Every request takes `delay` longer, its connection held meanwhile (a round trip to a distant server)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        response = await self.inner.handle_async_request(request)
        await asyncio.sleep(self.delay)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def first_sync(connection: Connection, root: Path, count: int, policy: TransferPolicy) -> tuple[float, float]:
    """(seconds, client CPU seconds) of a first sync of a fresh `count`-file tree, nothing remembered."""
    make_tree(root, count, f" {os.urandom(8).hex()}")
    syncer = Syncer(connection, root, cache=SyncCache(None), stat_cache=False, policy=policy)
    try:
        cpu = time.process_time()
        seconds, report = await timed(syncer)
        cpu = time.process_time() - cpu
    finally:
        syncer.close()
    assert report.uploaded == count and len(report.state) == count, report
    return seconds, cpu


async def first_syncs(tmp: Path, state_dir: Path) -> dict[str, float]:
    """The first-sync lines; returns the figures the verdicts use."""
    figures: dict[str, float] = {}
    connection = await connect(embedded_target(state_dir))
    try:
        for label, policy, count in (("default (engine batches)", TransferPolicy(), FILES),
                                     ("official API, 32 in flight", OFFICIAL_API, FILES),
                                     ("serial baseline", SERIAL, SERIAL_FILES)):
            seconds, cpu = await first_sync(connection, tmp / f"first-{len(figures)}", count, policy)
            scaled = seconds * FILES / count
            figures[label] = scaled
            note = f" ({count:,} files: {ms(seconds)}, scaled)" if count != FILES else ""
            print(f"first sync, {label:<28}: {scaled:6.2f} s for {FILES:,} files{note}; client CPU "
                  f"{cpu * FILES / count:.2f} s", flush=True)
    finally:
        await connection.aclose()
    delayed: list[DelayedTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        delayed.append(DelayedTransport(inner, LATENCY))
        return delayed[-1]

    connection = await connect(embedded_target(state_dir), wrap_transport=wrap)
    try:
        for label, policy, count in (("default (engine batches)", TransferPolicy(), FILES),
                                     ("official API, 32 in flight", OFFICIAL_API, FILES),
                                     ("serial baseline", SERIAL, LATENCY_SERIAL_FILES)):
            before = delayed[0].requests
            seconds, cpu = await first_sync(connection, tmp / f"first-{len(figures)}", count, policy)
            scaled = seconds * FILES / count
            figures[f"latency {label}"] = scaled
            note = f" ({count:,} files: {seconds:.2f} s, scaled)" if count != FILES else ""
            print(f"+{LATENCY * 1000:.0f} ms/request, {label:<21}: {scaled:6.2f} s for {FILES:,} files{note}; "
                  f"{delayed[0].requests - before:,} requests; client CPU {cpu * FILES / count:.2f} s", flush=True)
    finally:
        await connection.aclose()
    return figures


def change(path: Path) -> None:
    with open(path, "a") as handle:
        handle.write(f"# changed {time.time_ns()}\n")
    time.sleep(0.02)  # as above: an editor does not save and sync within one tick


async def timed(syncer: Syncer, changed: list[Path] | None = None) -> tuple[float, SyncReport]:
    started = time.perf_counter()
    report = await syncer.sync(changed=changed)
    return time.perf_counter() - started, report


def line(label: str, seconds: float | list[float], report: SyncReport) -> None:
    figure = spread(seconds) if isinstance(seconds, list) else ms(seconds)
    print(f"{label:<26}: {figure}; scanned {report.scanned}, hashed {report.hashed} "
          f"({report.hashed_bytes} B), probed {report.probed}, uploaded {report.uploaded} "
          f"({report.uploaded_bytes} B)", flush=True)


async def main() -> int:
    header(f"bench_sync: {FILES:,}-file tree: first sync vs serial; 1 file changed: re-sync vs full re-scan")
    with tempfile.TemporaryDirectory(prefix="contree-bench-sync-") as tmp:
        state_dir = Path(tmp) / "engine"
        tree = Path(tmp) / "tree"
        paths = make_tree(tree)
        connection = await connect(embedded_target(state_dir))
        try:
            syncer = Syncer(connection, tree, cache=SyncCache(Path(tmp) / "cache.sqlite"))
            seconds, first = await timed(syncer)
            line("first sync", seconds, first)
            seconds, noop = await timed(syncer)
            line("no change, walk", seconds, noop)

            series: dict[str, list[float]] = {"watch": [], "walk": []}
            reports: dict[str, SyncReport] = {}
            victims = iter(paths[::97])
            for _ in range(REPEATS):
                for kind in ("watch", "walk"):
                    victim = next(victims)
                    change(victim)
                    seconds, report = await timed(syncer, [victim] if kind == "watch" else None)
                    series[kind].append(seconds)
                    reports[kind] = report
                    if (report.hashed, report.uploaded) != (1, 1):
                        print(f"unexpected: {kind} hashed {report.hashed}, uploaded {report.uploaded}")
            line("re-sync, watch (1 path)", series["watch"], reports["watch"])
            line("re-sync, walk + stat cache", series["walk"], reports["walk"])

            change(next(victims))
            # the same cache file without its stat table: it knows the server's blobs, not the files' stats
            rescan_syncer = Syncer(connection, tree, cache=SyncCache(Path(tmp) / "cache.sqlite"), stat_cache=False)
            rescan_seconds, rescan = await timed(rescan_syncer)
            line("full re-scan, no stat cache", rescan_seconds, rescan)
            rescan_syncer.close()

            change(next(victims))
            cold_syncer = Syncer(connection, tree, cache=SyncCache(None), stat_cache=False)
            cold_seconds, cold = await timed(cold_syncer)
            line("cold: nothing remembered", cold_seconds, cold)
            cold_syncer.close()
            syncer.close()
            await connection.aclose()
            firsts = await first_syncs(Path(tmp), state_dir)
        finally:
            await connection.aclose()
            subprocess.run([sys.executable, "-m", "contree_tui.cli", "engine", "stop", "--state-dir",
                            str(state_dir)], capture_output=True, check=False)
    watch = median(series["watch"])
    walk = median(series["walk"])
    print(f"full re-scan / watch re-sync : {rescan_seconds / watch:.0f}x; full re-scan / walk re-sync: "
          f"{rescan_seconds / walk:.1f}x; cold / watch: {cold_seconds / watch:.0f}x")
    w = reports["watch"]
    ok = watch <= GOAL_SECONDS and (w.hashed, w.uploaded) == (1, 1)
    print(f"watch re-sync: {ms(watch)}, {w.hashed} file hashed, {w.uploaded} upload "
          f"(goal <= {GOAL_SECONDS * 1000:g} ms, 1 hashed, 1 upload) {verdict(ok)}")
    wk = reports["walk"]
    print(f"walk re-sync : {ms(walk)}, {wk.hashed} file hashed, {wk.uploaded} upload "
          f"(same goal) {verdict(walk <= GOAL_SECONDS and (wk.hashed, wk.uploaded) == (1, 1))}")
    base, best = firsts["serial baseline"], firsts["default (engine batches)"]
    api = firsts["official API, 32 in flight"]
    print(f"first sync   : {best:.2f} s, serial / default {base / best:.0f}x, serial / official API "
          f"{base / api:.1f}x (goal <= {FIRST_GOAL:g} s) {verdict(best <= FIRST_GOAL)}")
    base, best = firsts["latency serial baseline"], firsts["latency default (engine batches)"]
    api = firsts["latency official API, 32 in flight"]
    print(f"first sync +{LATENCY * 1000:.0f} ms: default {best:.2f} s (serial / default {base / best:.0f}x) "
          f"{verdict(best <= LATENCY_GOAL)}; official API {api:.2f} s (serial / official API {base / api:.0f}x) "
          f"(goal <= {LATENCY_GOAL:g} s) {verdict(api <= LATENCY_GOAL)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
