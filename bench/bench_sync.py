"""Directory sync of a 10,000-file tree after a 1-file change: re-sync vs full re-scan, same run.

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
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import header, median, ms, spread, verdict

from contree_tui.client.connection import connect, embedded_target
from contree_tui.client.sync import Syncer, SyncReport
from contree_tui.client.sync_cache import SyncCache

FILES = 10_000
REPEATS = 7
GOAL_SECONDS = 0.050


def make_tree(root: Path) -> list[Path]:
    paths = []
    for i in range(FILES):
        path = root / f"pkg{i % 40}" / f"sub{i % 7}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\n" + "VALUE = 1\n" * (i % 60))
        paths.append(path)
    time.sleep(0.02)  # one clock tick: no file is "racily clean" when first hashed (see sync_cache.RACY_NS)
    return paths


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
    header(f"bench_sync: {FILES:,}-file tree, 1 file changed: re-sync vs full re-scan")
    with tempfile.TemporaryDirectory(prefix="contree-bench-sync-") as tmp:
        state_dir = Path(tmp) / "engine"
        tree = Path(tmp) / "tree"
        paths = make_tree(tree)
        connection = await connect(embedded_target(state_dir))
        try:
            syncer = Syncer(connection, tree, cache=SyncCache(Path(tmp) / "cache.sqlite"))
            seconds, first = await timed(syncer)
            line("first sync (context)", seconds, first)
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
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
