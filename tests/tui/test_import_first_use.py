"""What a new user trips on with `:import`, found driving the TUI in tmux at 160x45 and 80x24: `:` opens the
bar, so `:import …` typed as in the help left `import …`, which ran as a shell command (exit 127, "exited 12"
in a column one cell short). The command bar now reads a first word that is a verb as the verb (verbs.py), so
`import …` after the one colon IS the import; a command not found says `exit 127` in its status column; the
help lists the verbs; an import's row names the tag it makes before its (long) reference."""

from __future__ import annotations

import io
from pathlib import Path

from contree_client.models import OperationStatus
from rich.console import Console
from textual.widgets import Static

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Operation
from contree_tui.tui.outcome import outcome_words
from contree_tui.tui.screens.help import HelpScreen
from contree_tui.tui.widgets.operations_table import STATUS_WIDTH, import_label
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (80, 24)


def test_the_status_fits_its_column_and_an_import_names_its_tag_first() -> None:
    for code in (2, 12, 127, -1):
        words = outcome_words(Operation("u", "c", None, OperationStatus.SUCCESS, exit_code=code))
        assert words == f"exit {code}" and len(words) <= STATUS_WIDTH - 2, words  # 2: the glyph and a space
    assert import_label("import oci:/tmp/a/layout:t1 as mine:1") == "import mine:1 ← oci:/tmp/a/layout:t1"
    assert import_label("import alpine:3") == "import alpine:3"


async def test_import_typed_after_one_colon_is_the_verb_and_not_found_says_exit_127(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        known = set(screen.table.operations)
        await run_in_bar(pilot, "import oci:/nowhere:t1 mine:1")  # what `:import …` leaves after the `:`
        await until(pilot, lambda: any("cannot import" in (n.title or "") for n in app._notifications),
                    what="the import to fail (its toast)")
        [uuid] = set(screen.table.operations) - known
        op: Operation = screen.table.operations[uuid]
        assert op.is_import and op.status is OperationStatus.FAILED and op.error, "the verb ran, not the shell"

        known = set(screen.table.operations)
        await run_in_bar(pilot, "nosuchprogram")
        await until(pilot, lambda: any(not o.running for u, o in screen.table.operations.items() if u not in known),
                    what="the shell run to end")
        [uuid] = set(screen.table.operations) - known
        op = screen.table.operations[uuid]
        assert op.status is OperationStatus.SUCCESS and op.exit_code == 127 and not op.is_import
        assert str(screen.table.get_cell(uuid, "status")) == "✗ exit 127"

        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
        console = Console(width=86, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-command-bar", Static).content)
        verbs = console.export_text()
        assert "import" in verbs and "REF [TAG]" in verbs and "first word that is a verb" in verbs, verbs
