"""Watching parallel runs against a real engine: after a `:parallel` of three commands the merged log (`m`)
names each branch by what tells its command apart, in a colour it keeps, and `v` puts the three logs side by
side, each following its own run live, with search, follow and the outcome line, until `v` goes back."""

from __future__ import annotations

import re
from pathlib import Path

from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Stream
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.screens.split_logs import SplitLogsScreen
from contree_tui.tui.widgets.log_host import colour_slots
from contree_tui.tui.widgets.log_merge import MergedLog
from tests.tui.helpers import cancel_leftovers, loaded, until

SIZE = (160, 45)
NAMES = ("alpha", "beta", "gamma")


def branch(name: str, lines: int) -> str:
    """A branch printing `name 1` … `name N`, a line every 0.1 s; all three share every word but the name."""
    return f'i=0; while [ $i -lt {lines} ]; do i=$((i+1)); echo "{name} $i"; sleep 0.1; done'


async def start_parallel(pilot: Pilot[None], screen: MainScreen, lines: int) -> dict[str, str]:
    """`:parallel` of the three branches, as the command bar submits it; name → operation uuid, all started."""
    known = set(screen.table.operations)
    screen.submit_line(":parallel " + " ;; ".join(branch(name, lines) for name in NAMES))
    await until(pilot, lambda: len(set(screen.table.operations) - known) == 3, what="three branches")
    started = {screen.table.operations[uuid].command: uuid for uuid in set(screen.table.operations) - known}
    return {name: started[branch(name, lines)] for name in NAMES}


async def all_ended(pilot: Pilot[None], screen: MainScreen, uuids: dict[str, str]) -> None:
    """The runs end before the app does: one left going would count as running in the next test's session."""
    await until(pilot, lambda: all(screen.buffers.get(u) is not None and screen.buffers[u].complete
                                   for u in uuids.values()), timeout=60, what="the branches to end")


async def test_merged_log_names_each_branch_by_its_command_in_a_colour_it_keeps(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        # an earlier test's run still going joins the merge and changes what tells the labels apart (CI: an
        # `echo more` loop's, and the labels showed the loops' heads instead of `…echo alpha…`)
        await cancel_leftovers(pilot, screen)
        uuids = await start_parallel(pilot, screen, 40)
        view = screen.log_panel.view
        view.focus()
        await pilot.press("m")
        merged = view.source
        assert isinstance(merged, MergedLog) and set(uuids.values()) <= set(merged.keys)
        await until(pilot, lambda: all(f"{name} 3" in merged.lines.texts for name in NAMES),
                    what="every branch's lines")
        await pilot.pause(0.1)

        rows = view.screen_text()
        for name in NAMES:
            assert any(re.match(rf"…echo {name}… +│ {name} \d+", row) for row in rows), (name, rows)
        assert not any(row.startswith(uuid[:8]) for row in rows for uuid in uuids.values()), "no ids"

        key_of = {index: merged.members[merged.origin(index)].key for index in range(merged.dropped, merged.total)}
        styles: dict[str, set[str]] = {}
        for index, key in key_of.items():
            prefix = next(iter(view.line_strip(index)))  # the label's segment, drawn before the line
            styles.setdefault(key, set()).add(str(prefix.style))
        ours = {uuids[name]: styles[uuids[name]] for name in NAMES}
        assert all(len(found) == 1 for found in ours.values()), "one colour for all of a branch's lines"
        assert len({next(iter(found)) for found in ours.values()}) == 3, "a different colour per branch"
        slots = colour_slots(screen)
        for uuid, found in ours.items():
            assert found == {str(view._style(f"op-{slots.slot(uuid)}"))}, "the session's colour for that run"

        colours = {member.key: member.colour for member in merged.members}
        await pilot.press("m", "m")  # the selected run's log, and a merged log afresh
        again = view.source
        assert isinstance(again, MergedLog) and again is not merged
        assert {m.key: m.colour for m in again.members if m.key in colours} == \
            {k: c for k, c in colours.items() if k in again.keys}, "the same colours as before"
        await all_ended(pilot, screen, uuids)


async def test_v_shows_the_branches_side_by_side_each_following_its_run(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await cancel_leftovers(pilot, screen)
        uuids = await start_parallel(pilot, screen, 80)
        log = screen.log_panel.view
        log.focus()
        await pilot.pause()

        await pilot.press("v")
        try:
            await until(pilot, lambda: isinstance(app.screen, SplitLogsScreen) and len(app.screen.panes) == 3,
                        what="the split view with three panes")
        except AssertionError as missed:  # say what it had instead (a leftover run? a branch not listed?)
            panes = [(pane.uuid, str(pane.border_title)) for pane in getattr(app.screen, "panes", [])]
            running = [uuid for uuid, op in screen.table.operations.items() if op.running]
            raise AssertionError(f"{missed}: screen {type(app.screen).__name__}, panes {panes}, branches "
                                 f"{uuids}, running {running}") from None
        split = app.screen
        assert isinstance(split, SplitLogsScreen)
        panes = {pane.uuid: pane for pane in split.panes}
        assert set(panes) == set(uuids.values())
        slots = colour_slots(screen)
        for name, uuid in uuids.items():
            pane = panes[uuid]
            assert pane.view.source is screen.buffers[uuid], "the pane shows its own run's log"
            assert str(pane.border_title).startswith(f"…echo {name}… · "), pane.border_title
            assert pane.has_class(f"-op-{slots.slot(uuid)}"), "the border in the run's colour"
        grid = split.query_one("#split-panes")
        assert len({pane.region.y for pane in panes.values()}) == 2, "three panes: a 2x2 grid"
        assert sum(pane.region.width for pane in panes.values()) > grid.region.width, "the last one fills its row"

        # live: every pane gains lines while its run goes on, and stays at the bottom
        seen = {uuid: pane.view.line_count for uuid, pane in panes.items()}
        await until(pilot, lambda: all(pane.view.line_count > seen[uuid] + 2 for uuid, pane in panes.items()),
                    what="new lines in every pane")
        for name, uuid in uuids.items():
            view = panes[uuid].view
            assert view.following and round(view.scroll_y) >= view.max_scroll_y
            shown = [row.strip() for row in view.screen_text() if row.strip()]
            assert shown and re.fullmatch(rf"{name} \d+", shown[-1]), (name, shown[-3:])
            assert "executing" in str(panes[uuid].border_title) or "pending" in str(panes[uuid].border_title)

        # focus goes round the panes: the newest has it, tab / l go on, h goes back
        order = split.panes
        assert app.focused is order[-1].view
        await pilot.press("tab")
        assert app.focused is order[0].view
        await pilot.press("l")
        assert app.focused is order[1].view
        await pilot.press("h")
        assert app.focused is order[0].view

        # each pane searches on its own
        first = order[0]
        name = next(n for n, u in uuids.items() if u == first.uuid)
        await pilot.press("slash")
        assert first.prompt.is_open and app.focused is first.prompt.input
        await pilot.press(*f"{name} 2", "enter")
        assert first.view.search is not None and first.view.rows.matches
        assert all(pane.view.search is None for pane in order[1:])
        await pilot.press("escape")  # clears the search; the next esc would close the view
        assert first.view.search is None and isinstance(app.screen, SplitLogsScreen)
        await pilot.press("f")  # the search moved up to a match, pausing follow: f resumes it
        assert first.view.following

        # each run's end: its outcome in the title and as its pane's last line
        await all_ended(pilot, screen, uuids)
        await until(pilot, lambda: all("✓ exit 0" in str(pane.border_title) for pane in order),
                    what="the outcome in every title")
        for pane in order:
            stream, last = screen.buffers[pane.uuid].lines[-1]
            assert stream is Stream.META and last.startswith("── ✓ exit 0")
            await until(pilot, lambda pane=pane: any(row.startswith("── ✓ exit 0")
                                                     for row in pane.view.screen_text()),
                        what="the outcome line on screen")

        # 80x24: two panes stacked, the newest, and a note for the third
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: len(split.panes) == 2, what="two panes at 80x24")
        stacked = split.panes
        assert [pane.uuid for pane in stacked] == [pane.uuid for pane in order[1:]], "the newest two"
        assert stacked[0].region.x == stacked[1].region.x and stacked[0].region.y < stacked[1].region.y
        note = str(split.query_one("#split-note").render())
        assert "+1 older (no room)" in note and "v: back" in note and len(note) <= 80, note
        await pilot.resize_terminal(*SIZE)  # room again: the oldest comes back, in its place
        await until(pilot, lambda: [pane.uuid for pane in split.panes] == [pane.uuid for pane in order],
                    what="the three panes in their order")

        await pilot.press("v")
        assert isinstance(app.screen, MainScreen) and app.focused is log, "back where the user was"
