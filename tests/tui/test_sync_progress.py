"""The folder's sync in the status bar: a first sync of a large folder shows its progress (files and bytes done
of the total, growing, a spinner turning), then what it sent; an edit of a watched file shows what the watcher
sent and how long ago (the age ticking) and is an entry of the command log (`@`); a failed upload is red, with
the server's answer, a toast and an entry of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.text import Text

from contree_tui.client.blob_upload import BlobUploader, UploadFailed
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.command_log import CommandLogScreen
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.widgets.status_bar import SPINNER
from tests.tui.helpers import loaded, until

SIZE = (160, 45)
PROGRESS = re.compile(rf"^sync [{SPINNER}] ↑ \[[=> ]{{10}}\] ([\d,]+)/5,000 files \S+ \S+/\S+ \S+$")
SENT = re.compile(r"^sync ↑ (?P<what>.+), (?P<age>[\d.]+) (?:s|min) ago$")


async def test_the_first_sync_of_5000_files_shows_files_and_bytes_done(tui_engine_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    for i in range(5000):
        path = folder / f"pkg{i % 50}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {tmp_path.name} {i}\n" * (1 + i % 20))
    app = ContreeApp(state_dir=tui_engine_dir, folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        seen: list[str] = []

        def synced() -> bool:
            text = screen.status_bar.sync_text
            if not seen or seen[-1] != text:
                seen.append(text)
            return text.startswith("sync ↑ 5,000 files, ")

        await screen.backend.folder_sync.turn(True)  # type: ignore[union-attr]  # what `:sync on` does
        await until(pilot, synced, timeout=120, what="the first sync")
        progress = [m for m in map(PROGRESS.match, seen) if m]
        assert progress, f"no progress shown while syncing: {seen}"
        done = [int(m.group(1).replace(",", "")) for m in progress]
        assert done == sorted(done), seen
        assert SENT.match(seen[-1]), seen


async def sync_on(pilot, folder: Path) -> MainScreen:  # type: ignore[no-untyped-def]
    screen = await loaded(pilot)
    await screen.backend.folder_sync.turn(True)  # type: ignore[union-attr]  # what `:sync on` does
    await until(pilot, lambda: screen.status_bar.sync_text.startswith("sync ↑ 2 files, "), what="the first sync")
    return screen


async def test_an_edit_shows_what_the_watcher_sent_and_when_and_is_a_log_entry(tui_engine_dir: Path,
                                                                                tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.txt").write_text("hello world\n")
    (folder / "other.txt").write_text("untouched\n")
    app = ContreeApp(state_dir=tui_engine_dir, folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await sync_on(pilot, folder)
        (folder / "app.txt").write_text("HELLO WORLD\n")  # the same size: only the content says it changed
        await until(pilot, lambda: screen.status_bar.sync_text.startswith("sync ↑ 1 file, 12 B, "),
                    what="the watcher's sync of the edit")
        first = SENT.match(screen.status_bar.sync_text)
        assert first is not None, screen.status_bar.sync_text
        await until(pilot, lambda: (m := SENT.match(screen.status_bar.sync_text)) is not None
                    and float(m["age"]) >= float(first["age"]) + 0.5, what="the age to tick")

        await pilot.press("at")
        await until(pilot, lambda: isinstance(app.screen, CommandLogScreen), what="the command log")
        log = app.screen
        assert isinstance(log, CommandLogScreen)
        syncs = [row for row in log.rows() if row[1] == "sync"]
        assert syncs[-1][3:] == ["app.txt", syncs[-1][4]] and syncs[-1][4].startswith("↑ 1 file, 12 B in "), syncs
        assert len(syncs) == 2, f"the first sync and the edit, nothing for syncs that changed nothing: {syncs}"


async def test_a_failed_upload_is_red_with_the_servers_answer(tui_engine_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.txt").write_text("hello world\n")
    (folder / "other.txt").write_text("untouched\n")
    app = ContreeApp(state_dir=tui_engine_dir, folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await sync_on(pilot, folder)
        answer = "app.txt (12 bytes): the server answered HTTP 507: no space left on device"

        async def refuse(*_args: object) -> None:  # what the server says when its disk is full
            raise UploadFailed(answer)

        monkeypatch.setattr(BlobUploader, "ensure", refuse)
        (folder / "app.txt").write_text("HELLO WORLD\n")
        await until(pilot, lambda: screen.status_bar.sync_text == f"sync ✗ {answer}", what="the error")
        bar = screen.status_bar
        rendered = bar.render()
        assert isinstance(rendered, Text)
        red = bar.get_component_rich_style("status-bar--error")
        start = rendered.plain.index("✗")
        assert any(span.start <= start < span.end and span.style == red for span in rendered.spans), rendered.spans
        assert red.color is not None and red.color.triplet is not None and red.color.triplet.red > 150
        await until(pilot, lambda: any(n.title == "sync failed (retrying)" and answer in n.message
                                       and "Nothing changed" in n.message for n in app._notifications),
                    what="a toast with the whole reason")

        await pilot.press("at")
        await until(pilot, lambda: isinstance(app.screen, CommandLogScreen), what="the command log")
        log = app.screen
        assert isinstance(log, CommandLogScreen)
        failed = [row for row in log.rows() if row[1] == "sync" and row[4].startswith("failed: ")]
        assert len(failed) == 1 and answer in failed[0][4], failed
