"""The snapshot detail view against a real engine: `i` on the tree opens it; browse into a directory, view a
file a run wrote, save it, grep for a line, and the diff against the parent after runs that add, modify and
delete files; a modified text file's lines (side by side when wide, unified when narrow), a binary's sizes;
the diff of any two snapshots (`:diff A B`, `D` then `D` in the tree); the layer size in the header."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from textual.pilot import Pilot

from contree_tui.client.file_diff import DiffKind
from contree_tui.client.snapshot_diff import Change
from contree_tui.tui import snapshot_files
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.screens.prompt import PromptScreen
from contree_tui.tui.screens.snapshot_detail import SnapshotDetailScreen
from contree_tui.tui.widgets.diff_view import DiffView
from tests.tui.helpers import loaded, run_and_wait, run_in_bar, until

SIZE = (140, 40)



async def select(pilot: Pilot[None], detail: SnapshotDetailScreen, key: str) -> None:
    """Move the list's cursor to the row `key` with j, as a user would."""
    table = detail.entry_list
    await until(pilot, lambda: key in detail.targets, what=f"{key} in the list")
    table.move_cursor(row=0)
    for _ in range(table.row_count):
        if str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value) == key:
            return
        await pilot.press("j")
    raise AssertionError(f"{key} not reachable with j")


def view_text(detail: SnapshotDetailScreen) -> str:
    return "\n".join(detail.view.lines)


async def test_browse_view_save_grep_and_diff_a_snapshot(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        parent = await run_and_wait(pilot, screen, "mkdir -p /app && printf 'alpha\\nneedle 42\\n' > /app/notes.txt "
                                                   "&& echo keep > /app/keep && echo bye > /app/gone")
        child = await run_and_wait(pilot, screen, "echo omega >> /app/notes.txt && rm /app/gone && "
                                                  "echo new > /app/new")
        await until(pilot, lambda: screen.tree.cursor_uuid == child, what="the cursor on the new snapshot")

        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, SnapshotDetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, SnapshotDetailScreen) and detail.snapshot.uuid == child
        assert detail.parent_snapshot is not None and detail.parent_snapshot.uuid == parent
        # the header says what the run added (the engine's x_engine sizes): a few small files, 4 KiB blocks
        await until(pilot, lambda: detail.details is not None, what="the snapshot's size")
        assert detail.details is not None and detail.details.size is not None
        assert 4096 <= detail.details.size <= 64 * 1024 and detail.details.total_size > 1_000_000  # type: ignore[operator]
        header = str(detail.query_one("#detail-header").render())
        assert " size 26 B in 2 files added or changed, 1 removed (" in header and " in all)" in header, header

        # browse: / lists the root; enter on app/ goes in, h comes back out with app/ selected
        await select(pilot, detail, "/app")
        await pilot.press("enter")
        await until(pilot, lambda: detail.directory == "/app" and "/app/notes.txt" in detail.targets,
                    what="/app listed")
        assert set(detail.targets) == {"..", "/app/keep", "/app/new", "/app/notes.txt"}
        await pilot.press("h")
        await until(pilot, lambda: detail.directory == "/", what="back to /")
        await select(pilot, detail, "/app")
        await pilot.press("enter")

        # view a file the run wrote
        await select(pilot, detail, "/app/notes.txt")
        await pilot.press("enter")
        await until(pilot, lambda: "needle 42" in view_text(detail), what="the file's text")
        assert view_text(detail).splitlines()[-1].endswith("omega")

        # save it: the prompt offers the project folder; enter accepts
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the save prompt")
        prompt = app.screen
        assert isinstance(prompt, PromptScreen)
        assert prompt.input.value == str(tmp_path / "notes.txt")
        await pilot.press("enter")
        saved = tmp_path / "notes.txt"
        await until(pilot, lambda: saved.exists(), what="the download")
        assert saved.read_text() == "alpha\nneedle 42\nomega\n"

        # grep in /app finds the line, enter opens the file at it
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the grep prompt")
        await pilot.press(*"needle", "enter")
        await until(pilot, lambda: detail.mode == "grep" and detail.hits, what="grep's matches")
        assert [(h.path, h.line, h.text) for h in detail.hits] == [("/app/notes.txt", 2, "needle 42")]
        assert "1 match" in str(detail.entry_list.border_title)

        # the diff against the parent
        await pilot.press("d")
        await until(pilot, lambda: detail.mode == "diff", timeout=60, what="the diff")
        assert detail.diff is not None
        changes = {(c.path, c.change) for c in detail.diff.changes}
        assert {("/app/new", Change.ADDED), ("/app/notes.txt", Change.MODIFIED),
                ("/app/gone", Change.REMOVED)} <= changes, changes
        assert not any(c.path == "/app/keep" for c in detail.diff.changes)
        assert "1 removed" in str(detail.entry_list.border_title)
        # a removed file opens as it was in the parent
        await select(pilot, detail, "/app/gone")
        await pilot.press("enter")
        await until(pilot, lambda: "bye" in view_text(detail), what="the removed file, from the parent")
        assert parent[:8] in str(detail.view.border_title)

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back to the main screen")


async def test_failures_in_the_detail_view_are_toasts(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        base = screen.position.working
        assert base is not None
        screen.inspect_snapshot(base)
        await until(pilot, lambda: isinstance(app.screen, SnapshotDetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, SnapshotDetailScreen)
        await until(pilot, lambda: "/bin" in detail.targets, what="the root listed")

        await pilot.press("d")  # busybox:latest is a root: nothing to compare with
        await until(pilot, lambda: any("no parent" in n.message for n in app._notifications), what="a toast")

        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the grep prompt")
        await pilot.press(*"(unclosed", "enter")
        await until(pilot, lambda: any(n.title == "grep failed" for n in app._notifications),
                    what="a toast for a bad regex")
        assert isinstance(app.screen, SnapshotDetailScreen)

        await select(pilot, detail, "/bin")
        await pilot.press("s")  # a directory cannot be saved
        await until(pilot, lambda: any(n.title == "cannot save" for n in app._notifications), what="a toast")


async def open_detail_on(pilot: Pilot[None], screen: MainScreen, uuid: str) -> SnapshotDetailScreen:
    screen.inspect_snapshot(uuid)
    await until(pilot, lambda: isinstance(pilot.app.screen, SnapshotDetailScreen), what="the detail view")
    detail = pilot.app.screen
    assert isinstance(detail, SnapshotDetailScreen)
    return detail


def diff_text(detail: SnapshotDetailScreen) -> list[str]:
    return detail.query_one(DiffView).lines


async def test_a_same_size_edit_shows_its_lines_and_a_binary_its_sizes(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await loaded(pilot)
        await run_and_wait(pilot, screen, "mkdir -p /app && printf 'one\\ntwo\\nthree\\n' > /app/app.txt && "
                                          "head -c 2000 /dev/zero > /app/blob")
        child = await run_and_wait(pilot, screen, "sleep 1; sed -i s/two/TWO/ /app/app.txt && "
                                                  "head -c 3000 /dev/zero > /app/blob")
        detail = await open_detail_on(pilot, screen, child)
        await until(pilot, lambda: "/" in str(detail.entry_list.border_title), what="the root listed")
        await pilot.press("d")
        await until(pilot, lambda: detail.mode == "diff", timeout=60, what="the diff")
        assert detail.diff is not None
        details = {c.path: c.detail for c in detail.diff.changes}
        assert details["/app/app.txt"] == "content", "the same size, a later mtime: the bytes were compared"

        await select(pilot, detail, "/app/app.txt")
        await pilot.press("enter")
        view = detail.query_one(DiffView)
        await until(pilot, lambda: view.diff is not None and view.display, what="the line diff")
        assert view.side_by_side, "160 columns: side by side"
        rows = diff_text(detail)
        changed = [row for row in rows if "-two" in row]
        assert len(changed) == 1 and "+TWO" in changed[0], rows  # the old line and its new one, on one row
        assert any(row.rstrip().endswith("one") and "-" not in row for row in rows), "context around it"
        assert "+1 -1 lines" in str(view.border_subtitle)

        await select(pilot, detail, "/app/blob")
        await pilot.press("enter")
        await until(pilot, lambda: view.diff is not None and view.diff.path == "/app/blob", what="the binary")
        assert view.diff.kind is DiffKind.BINARY and (view.diff.old_size, view.diff.new_size) == (2000, 3000)
        assert diff_text(detail) == ["binary: 2.0 KiB → 2.9 KiB"]

        await pilot.resize_terminal(100, 40)  # narrower than 140 columns: unified, as `diff -u`
        await select(pilot, detail, "/app/app.txt")
        await pilot.press("enter")
        await until(pilot, lambda: view.diff is not None and view.diff.path == "/app/app.txt", what="the diff")
        rows = [row.split(None, 2)[-1] if row[:1] == " " else row for row in diff_text(detail)]
        assert not view.side_by_side
        assert [r for r in rows if r.startswith(("-", "+"))] == ["-two", "+TWO"], diff_text(detail)


async def test_diff_any_two_snapshots_from_the_bar_and_with_D(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        first = await run_and_wait(pilot, screen, "mkdir -p /w && echo a > /w/a && echo keep > /w/keep")
        await run_and_wait(pilot, screen, "echo b > /w/b")
        third = await run_and_wait(pilot, screen, "rm /w/a && echo more >> /w/keep")

        # :diff A B between non-adjacent snapshots: what the two runs after A did, together
        await run_in_bar(pilot, f":diff {first[:8]} .")
        await until(pilot, lambda: isinstance(app.screen, SnapshotDetailScreen), what="the diff view")
        detail = app.screen
        assert isinstance(detail, SnapshotDetailScreen)
        await until(pilot, lambda: detail.mode == "diff", timeout=60, what="the diff")
        assert detail.snapshot.uuid == third and detail.base is not None and detail.base.uuid == first
        assert detail.diff is not None
        assert {(c.path, c.change) for c in detail.diff.changes} == {
            ("/w/a", Change.REMOVED), ("/w/b", Change.ADDED), ("/w/keep", Change.MODIFIED)}
        assert f"diff {first[:8]} → {third[:8]}" in str(detail.entry_list.border_title)
        await select(pilot, detail, "/w/keep")
        await pilot.press("enter")
        await until(pilot, lambda: detail.query_one(DiffView).diff is not None, what="the line diff")
        assert any("+more" in row for row in diff_text(detail))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")

        # a name that is no snapshot: a toast, and the way to the shell's diff
        await run_in_bar(pilot, ":diff nosuchtag")
        await until(pilot, lambda: any(n.title == "cannot diff" and "!diff" in n.message
                                       for n in app._notifications), what="a toast")

        # D on the base, D on the other: the same diff, from the tree
        tree = screen.tree
        tree.focus()
        tree.move_cursor(tree.node_for(first))
        await until(pilot, lambda: tree.cursor_uuid == first, what="the cursor on the base")
        await pilot.press("D")
        tree.move_cursor(tree.node_for(third))
        await until(pilot, lambda: tree.cursor_uuid == third, what="the cursor on the other")
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, SnapshotDetailScreen), what="the diff view")
        detail = app.screen
        assert isinstance(detail, SnapshotDetailScreen)
        await until(pilot, lambda: detail.mode == "diff" and detail.diff is not None, timeout=60, what="the diff")
        assert detail.base is not None and (detail.base.uuid, detail.snapshot.uuid) == (first, third)
        assert len(detail.diff.changes) == 3  # type: ignore[union-attr]


async def test_without_the_engine_extension_the_layer_size_is_what_the_run_wrote(
        tui_engine_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hosted Contree sends no x_engine sizes: the header takes the producing operation's image_size (the
    spec's own field) and, for an image no run made, says nothing rather than a wrong number."""
    real = snapshot_files.image_details

    async def hosted(connection, uuid):  # type: ignore[no-untyped-def]  # the spec's Image: no extension
        found = await real(connection, uuid)
        return dataclasses.replace(found, size=None, total_size=None, layers=None, content_bytes=None, files=None,
                                   removed=None, extended=False)

    monkeypatch.setattr(snapshot_files, "image_details", hosted)
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        base = screen.position.working
        assert base is not None
        child = await run_and_wait(pilot, screen, "head -c 5000 /dev/urandom > /five-k")
        detail = await open_detail_on(pilot, screen, child)
        await until(pilot, lambda: detail.details is not None, what="the snapshot's size")
        assert detail.details is not None and detail.details.size_from_run
        assert detail.details.size is not None and detail.details.size >= 5000
        header = str(detail.query_one("#detail-header").render())
        assert " written by its run" in header and " in all)" not in header
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")

        detail = await open_detail_on(pilot, screen, base)  # busybox:latest: no run made it
        await until(pilot, lambda: detail.details is not None, what="the image's details")
        assert detail.details is not None and detail.details.size is None
        assert " size " not in str(detail.query_one("#detail-header").render())
