"""What a new user trips on with `:import`, found driving the TUI in tmux at 160x45 and 80x24: `:` opens the
bar, so `:import …` typed as in the help runs `import …` as a shell command (exit 127, "exited 12" in a column
one cell short): a toast now says how to type the verb, the status says `exit 127`; the help screen lists the
verbs; an import's row names the tag it makes before its (long) reference."""

from __future__ import annotations

import io
from pathlib import Path

from contree_client.models import OperationStatus
from rich.console import Console
from textual.widgets import Static

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Operation
from contree_tui.tui.screens.help import HelpScreen
from contree_tui.tui.verbs import verb_hint
from contree_tui.tui.widgets.operations_table import exited, import_label
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (80, 24)


def test_a_verb_named_command_not_found_gets_a_hint_and_nothing_else_does() -> None:
    hint = verb_hint("import  oci:/x:t1 mine:1", 127)
    assert hint is not None and "type :import oci:/x:t1 mine:1" in hint, hint
    assert verb_hint("import oci:/x:t1", 0) is None, "ImageMagick's import ran: no hint"
    assert verb_hint("imports x", 127) is None and verb_hint("", 127) is None


def test_the_status_fits_its_column_and_an_import_names_its_tag_first() -> None:
    assert exited(2) == "exited 2" and exited(12) == "exited 12" and exited(127) == "exit 127"
    assert import_label("import oci:/tmp/a/layout:t1 as mine:1") == "import mine:1 ← oci:/tmp/a/layout:t1"
    assert import_label("import alpine:3") == "import alpine:3"


async def test_import_typed_after_one_colon_runs_in_the_shell_and_a_toast_says_how(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        known = set(screen.table.operations)
        await run_in_bar(pilot, "import oci:/nowhere:t1 mine:1")  # what `:import …` leaves after the `:`
        await until(pilot, lambda: any("did you mean a verb" in (n.title or "") for n in app._notifications),
                    what="the hint")
        hint = next(n.message for n in app._notifications if "did you mean a verb" in (n.title or ""))
        assert "type :import oci:/nowhere:t1 mine:1" in hint, hint
        [uuid] = set(screen.table.operations) - known
        op: Operation = screen.table.operations[uuid]
        assert op.status is OperationStatus.SUCCESS and op.exit_code == 127 and not op.is_import
        assert str(screen.table.get_cell(uuid, "status")) == "✗ exit 127"
        assert not any(n.title == "no change" for n in app._notifications), "the hint, not a misleading toast"

        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
        console = Console(width=86, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-verbs", Static).content)
        verbs = console.export_text()
        assert ":import REF [TAG]" in verbs and "press :, then type" in verbs, verbs
