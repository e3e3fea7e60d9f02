"""An operation another client starts in exec form (`command` + `args`, `shell: false`: contree-cli's
`contree run -- echo hi` sends command `echo`, args `["hi"]`) reads in the operations table and the snapshot
tree as its whole command line, shell-quoted, not as the program alone. contree-client in-process on its own
connection, the real engine, the real app."""

from __future__ import annotations

from pathlib import Path

from tests.tui.helpers import loaded, until
from tests.tui.other_clients import project_app, sdk

SIZE = (160, 45)


async def test_an_exec_form_run_reads_whole_in_the_table_and_the_tree(tui_engine_dir: Path, tmp_path: Path) -> None:
    app, _folder = project_app(tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        start = screen.position.working
        assert start is not None
        expected = "touch '/made by' /exec"  # short: the whole line fits the cell at 160 columns
        async with sdk(tui_engine_dir) as other:
            spawned = await other.client.spawn_instance(
                "touch", start, args=["/made by", "/exec"], shell=False, disposable=False)
            uuid = str(spawned.uuid).lower()
            await other.client.wait_operation(spawned.uuid, timeout=60)
        table = screen.table
        await until(pilot, lambda: uuid in table.operations and not table.operations[uuid].running, timeout=30,
                    what="the exec-form run, ended, in the table")
        await until(pilot, lambda: table.operations[uuid].command == expected, timeout=30,
                    what=f"its command to read {expected!r}")
        await pilot.pause()
        assert expected in str(table.get_cell(uuid, "command")), "the row's cell, not only the model"
        await until(pilot, lambda: screen.tree.commands.get(uuid) == expected, timeout=30,
                    what="the snapshot tree's label")
