"""The first sync's transfer (client/blob_upload.py) against the real served engine: every file's content
right in the sandbox, requests in flight bounded, a failed upload changes nothing, progress only grows.
The transport is wrapped (connect's wrap_transport) to watch and disturb the requests; the server is real."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

import httpx
import pytest

from contree_tui.client.blob_upload import TransferPolicy
from contree_tui.client.connection import Connection, connect, embedded_target
from contree_tui.client.position import PositionStore, SyncSettings
from contree_tui.client.progress import ERASE_LINE, SyncProgressLine
from contree_tui.client.runner import RunSpec, start_run
from contree_tui.client.sync import Syncer, SyncError, SyncPhase, SyncStatus
from contree_tui.client.sync_cache import SyncCache
from contree_tui.client.workspace import Workspace
from tests.client.conftest import FAST
from tests.client.helpers import make_tree, run_in_sandbox, salt, settle

UPLOAD_ROUTES = ("/v1/files", "/v1/x/files/batch")


class WatchingTransport(httpx.AsyncBaseTransport):
    """Counts the requests in flight (the most at once) and can fail one upload: the `fail_at`-th POST
    gets an HTTP 500 without reaching the server."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.inner = inner
        self.delay = delay
        self.fail_at = fail_at
        self.in_flight = 0
        self.most = 0
        self.posts = 0
        self.routes: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            self.routes.append(f"{request.method} {request.url.path}")
            if request.method == "POST" and request.url.path in UPLOAD_ROUTES:
                self.posts += 1
                if self.posts == self.fail_at:
                    await request.aread()
                    return httpx.Response(500, json={"error": "disk on fire", "status": 500})
            if self.delay:
                await asyncio.sleep(self.delay)  # a round trip: the request holds its place meanwhile
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


async def watched(engine_dir: Path, **options: object) -> tuple[Connection, WatchingTransport]:
    holder: list[WatchingTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        holder.append(WatchingTransport(inner, **options))  # type: ignore[arg-type]
        return holder[0]

    connection = await connect(embedded_target(engine_dir), backoff=FAST, wrap_transport=wrap)
    return connection, holder[0]


def listing(root: Path, rels: list[str]) -> list[str]:
    """`sha256sum`-style lines (`<sha>  ./<rel>`) for the local files, sorted like the sandbox's."""
    return sorted(f"{hashlib.sha256((root / rel).read_bytes()).hexdigest()}  ./{rel}" for rel in rels)


async def sandbox_listing(connection: Connection, syncer: Syncer, state: object) -> list[str]:
    out = await run_in_sandbox(connection, state, "cd /app && find . -type f -exec sha256sum {} + | sort -k2")  # type: ignore[arg-type]
    return sorted(out.splitlines())


@pytest.mark.parametrize("batch", [True, False], ids=["engine-batch", "official-api"])
async def test_2000_files_arrive_whole_with_bounded_requests_and_growing_progress(
        engine_dir: Path, tmp_path: Path, batch: bool) -> None:
    root = tmp_path / "project"
    rels = make_tree(root, 1990, salt())
    for i in range(10):  # larger files take the probe-then-stream path (above PROBE_ABOVE, SMALL_FILE)
        rel = f"big/blob{i}.bin"
        (root / "big").mkdir(exist_ok=True)
        (root / rel).write_bytes(salt().encode() * (10_000 if i < 5 else 40_000))
        rels.append(rel)
    settle()
    connection, transport = await watched(engine_dir, delay=0.002)
    policy = TransferPolicy(in_flight=12, batch=batch)
    syncer = Syncer(connection, root, cache=SyncCache(None), policy=policy)
    statuses: list[SyncStatus] = []
    syncer.status.subscribe(statuses.append)
    try:
        report = await syncer.sync()
        assert (len(report.state), report.uploaded) == (2000, 2000)
        assert 1 <= transport.most <= 12, f"{transport.most} requests in flight at once"
        uploads = sum(route.startswith("POST /v1/") and "files" in route for route in transport.routes)
        if batch:
            assert uploads <= 2000 // 256 + 12, f"{uploads} upload requests for 2,000 files"
            assert transport.most <= 4 + 10, "4 batches at a time (plus the 10 large files' requests)"
        else:
            assert uploads == 2000, "the official API: one upload per file"
            assert transport.most >= 8, "several requests in flight, not one at a time"
        # asked about first: only the files above PROBE_ABOVE (160 and 640 KB), and on the engine only those
        # too large for a batch (640 KB)
        assert report.probed == (5 if batch else 10)

        progress = [s for s in statuses if s.phase is SyncPhase.SYNCING and s.files]
        assert progress[0].done_files == 0 and progress[-1].done_files == progress[-1].files == 2000
        assert progress[-1].done_bytes == progress[-1].bytes == sum((root / r).stat().st_size for r in rels)
        done = [(s.done_files, s.done_bytes) for s in progress]
        assert done == sorted(done), "progress never goes back"
        assert len(progress) >= 3, "progress between the start and the end, not only both"
        assert statuses[-1].phase is SyncPhase.IDLE

        assert await sandbox_listing(connection, syncer, report.state) == listing(root, rels)
    finally:
        syncer.close()
        await connection.aclose()


@pytest.mark.parametrize("batch", [True, False], ids=["engine-batch", "official-api"])
async def test_an_upload_failing_midway_changes_nothing_and_says_so(
        engine_dir: Path, tmp_path: Path, batch: bool) -> None:
    root = tmp_path / "project"
    rels = make_tree(root, 600, salt())
    connection, transport = await watched(engine_dir)
    syncer = Syncer(connection, root, cache=SyncCache(None), policy=TransferPolicy(in_flight=4, batch=batch))
    try:
        first = await syncer.sync()
        for rel in rels[:500]:
            (root / rel).write_text(f"# changed {salt()}\n")
        settle()
        transport.posts = 0
        transport.fail_at = 2 if batch else 250  # the second of two batches, or a file half-way
        with pytest.raises(SyncError) as failed:
            await syncer.sync()
        message = str(failed.value)
        assert "HTTP 500: disk on fire" in message and "Nothing changed" in message, message
        assert syncer.state is first.state, "the synced state is still the one before the failed sync"
        assert syncer.status.value.phase is SyncPhase.ERROR and "disk on fire" in syncer.status.value.reason
        old = await run_in_sandbox(connection, first.state, f"cat /app/{rels[0]}")
        assert "changed" not in old, "a run still gets the files of the last complete sync"

        transport.fail_at = None
        healed = await syncer.sync()
        assert healed.changed == tuple(sorted(rels[:500]))
        assert healed.uploaded < 500, "what was sent before the failure is not sent again"
        assert await sandbox_listing(connection, syncer, healed.state) == listing(root, rels)
    finally:
        syncer.close()
        await connection.aclose()


async def test_a_run_whose_sync_fails_does_not_start_and_the_position_stays(
        engine_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_tree(root, 40, salt())
    connection, transport = await watched(engine_dir, fail_at=1)
    ws = Workspace(connection, root, positions=PositionStore(tmp_path / "positions.sqlite"))
    try:
        ws.save_sync_settings(SyncSettings(True, "/app", ()))
        ws.position.set(await ws.base_image())
        before = ws.position.reload()
        with pytest.raises(SyncError, match="disk on fire"):
            await start_run(ws, RunSpec("echo should-not-run > /marker"))
        assert ws.position.reload() == before
        assert not any(route == "POST /v1/instances" for route in transport.routes), "no run was started"
    finally:
        await ws.aclose()


async def test_the_cli_progress_line_follows_the_sync_on_a_terminal(connection: Connection, tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_tree(root, 1000, salt())
    syncer = Syncer(connection, root, cache=SyncCache(None), policy=TransferPolicy(batch=False))
    terminal = io.StringIO()
    line = SyncProgressLine(terminal, "project", syncer.status, live=True)
    try:
        await syncer.sync()
    finally:
        line.close()
        syncer.close()
    drawn = [text for text in terminal.getvalue().split(ERASE_LINE) if text]
    assert drawn[0] == "project  scanning"
    assert drawn[1].startswith("project  sync  [>") and "  0/1,000 files  0 B / " in drawn[1], drawn[1]
    assert drawn[-1].startswith("project  sync  [" + "=" * 24 + "]  100%  1,000/1,000 files"), drawn[-1]
    assert terminal.getvalue().endswith(ERASE_LINE), "the live line is gone before the command's last words"
    piped = io.StringIO()
    SyncProgressLine(piped, "project", syncer.status, live=False).close()
    assert piped.getvalue() == ""
