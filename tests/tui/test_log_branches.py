"""Watching parallel runs against a real engine: after a `:parallel` of three commands the merged log (`m`)
names each branch by what tells its command apart, in a colour it keeps."""

from __future__ import annotations

import re
from pathlib import Path

from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.widgets.log_host import colour_slots
from contree_tui.tui.widgets.log_merge import MergedLog
from tests.tui.helpers import loaded, until

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
