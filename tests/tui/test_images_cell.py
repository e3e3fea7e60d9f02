"""The operations table's `image → result` cell fits its column: a run that changed nothing showed
`3e074f73 (no change` (20 cells cut to the column's 19), a disposable one `3e074f73 → disposab`."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from contree_tui.tui.widgets.operations_cells import COLUMNS, images_cell

WIDTH = dict((key, width) for key, _label, width in COLUMNS)["images"]
SOURCE, RESULT = "3e074f73-df9c-4696-a3d5-c4d9b80527da", "f5ae255f-0000-4000-8000-000000000000"


@pytest.mark.parametrize(("result", "disposable", "cell"), [
    (SOURCE, False, "3e074f73 no change"),  # the log footer's words, whole
    (RESULT, False, "3e074f73 → f5ae255f"),
    (None, True, "3e074f73 disposable"),  # was `3e074f73 → disposab`
    (None, False, "3e074f73"),  # still running
])
def test_the_cell_says_what_the_run_made_within_the_column(result: str | None, disposable: bool, cell: str) -> None:
    text = images_cell(SOURCE, result, disposable)
    assert text == cell
    assert cell_len(text) <= WIDTH
