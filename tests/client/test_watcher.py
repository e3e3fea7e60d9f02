"""The watcher end to end: real files changing on disk, real inotify events, real uploads to the served engine."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

from contree_tui.client.connection import Connection, Target, connect
from contree_tui.client.sync import Syncer, SyncPhase, SyncReport, SyncStatus
from contree_tui.client.watcher import DirectoryWatcher
from tests.client.conftest import FAST, TcpEngine
from tests.client.helpers import make_tree, run_in_sandbox, salt

QUICK = {"step_ms": 50, "debounce_ms": 500, "full_scan_every": None}


class Reports:
    """Collects the watcher's reports; `wait(pred)` awaits the first new one that satisfies `pred` (new: after
    `since`, an index taken before the action that causes it, or else from the call)."""

    def __init__(self) -> None:
        self.items: list[SyncReport] = []
        self._changed = asyncio.Event()

    def __call__(self, report: SyncReport) -> None:
        self.items.append(report)
        self._changed.set()

    async def wait(self, predicate: Callable[[SyncReport], bool], timeout: float = 15,
                   since: int | None = None) -> SyncReport:
        seen = len(self.items) if since is None else since

        async def first() -> SyncReport:
            nonlocal seen
            while True:
                for report in self.items[seen:]:
                    if predicate(report):
                        return report
                seen = len(self.items)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)


async def settled(reports: Reports, quiet: float = 0.3) -> None:
    """Wait until no report came for `quiet` seconds: late events of one change land before the next."""
    while True:
        count = len(reports.items)
        await asyncio.sleep(quiet)
        if len(reports.items) == count:
            return


async def test_edits_touches_and_deletions_end_to_end(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    rels = make_tree(root, 50, salt())
    syncer = Syncer(connection, root)
    reports = Reports()
    statuses: list[SyncStatus] = []
    syncer.status.subscribe(statuses.append)
    async with DirectoryWatcher(syncer, on_report=reports, **QUICK) as watcher:  # type: ignore[arg-type]
        await asyncio.wait_for(watcher.ready.wait(), 30)
        assert reports.items[0].full and reports.items[0].uploaded == 50
        assert watcher.status.value == SyncStatus(SyncPhase.IDLE, 50, reports.items[0].state.total_bytes)
        before = watcher.state.value
        assert before is not None and len(before) == 50

        edited = root / rels[3]
        content = f"edited {salt()}\n"
        digest = hashlib.sha256(content.encode()).hexdigest()
        statuses.clear()
        start = len(reports.items)
        edited.write_text(content)
        report = await reports.wait(lambda r: r.state.entries[rels[3]].sha256 == digest)
        assert (report.full, report.hashed, report.changed) == (False, 1, (rels[3],))
        assert sum(r.uploaded for r in reports.items[start:]) == 1
        assert SyncStatus(SyncPhase.SYNCING, 1, len(content)) in statuses, statuses
        assert statuses[-1].phase is SyncPhase.IDLE
        after_edit = watcher.state.value
        assert after_edit is not None
        await settled(reports)

        start = len(reports.items)
        edited.touch()
        await reports.wait(lambda r: True)
        await settled(reports)
        touched = reports.items[start:]
        assert sum(r.hashed for r in touched) >= 1, "a touch changes the stat: the file is hashed again"
        assert sum(r.uploaded + r.probed for r in touched) == 0 and not any(r.changed_state for r in touched)
        assert watcher.state.value is after_edit, "a touch keeps the very same state"

        start = len(reports.items)
        edited.write_text(content)  # an identical rewrite
        await reports.wait(lambda r: True)
        await settled(reports)
        rewritten = reports.items[start:]
        assert sum(r.hashed for r in rewritten) >= 1
        assert sum(r.uploaded for r in rewritten) == 0 and not any(r.changed_state for r in rewritten)
        assert watcher.state.value is after_edit

        (root / rels[4]).unlink()
        (root / "new").mkdir()
        for i in range(30):  # a burst: coalesced, all of it lands
            (root / "new" / f"f{i}.txt").write_text(f"{i} {salt()}\n")
        await reports.wait(lambda r: len(r.state) == 50 - 1 + 30 and rels[4] not in r.state.entries)
        final = watcher.state.value
        assert final is not None

    out = await run_in_sandbox(connection, final,
                               f"cat /app/{rels[3]}; test -e /app/{rels[4]} || echo gone; ls /app/new | wc -l")
    assert out.splitlines() == [content.strip(), "gone", "30"]


async def test_an_edit_during_the_first_sync_is_not_lost(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_tree(root, 200, salt())
    syncer = Syncer(connection, root)
    reports = Reports()
    async with DirectoryWatcher(syncer, on_report=reports, **QUICK) as watcher:  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # watching, the first sync under way
        (root / "late.txt").write_text("written while the first sync ran\n")
        await reports.wait(lambda r: "late.txt" in r.state.entries)
        assert watcher.ready.is_set()


async def test_an_unreachable_server_shows_an_error_then_recovers(tcp_engine: TcpEngine, tmp_path: Path) -> None:
    await tcp_engine.start()
    conn = await connect(Target(name="tcp", url=tcp_engine.url, token=tcp_engine.token, source="test"), backoff=FAST)
    root = tmp_path / "project"
    make_tree(root, 5, salt())
    syncer = Syncer(conn, root)
    reports = Reports()
    try:
        async with DirectoryWatcher(syncer, on_report=reports, **QUICK) as watcher:  # type: ignore[arg-type]
            await asyncio.wait_for(watcher.ready.wait(), 30)
            tcp_engine.stop()
            (root / "offline.txt").write_text(f"written while the server was down {salt()}\n")
            error = await watcher.status.wait_for(lambda s: s.phase is SyncPhase.ERROR, timeout=15)
            assert "cannot reach" in error.reason and tcp_engine.url in error.reason
            assert error.describe().startswith("sync failed: ")
            # the retry may land while start() still polls for the engine (CI: the report came before the
            # wait began, and the wait only looked at later ones)
            mark = len(reports.items)
            await tcp_engine.start()
            report = await reports.wait(lambda r: "offline.txt" in r.state.entries, timeout=30, since=mark)
            assert report.uploaded == 1
            assert watcher.status.value.phase is SyncPhase.IDLE
    finally:
        syncer.close()
        await conn.aclose()
