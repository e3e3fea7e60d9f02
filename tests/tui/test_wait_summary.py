"""`:wait`'s closing toast counts what it waited for in words that fit the count."""

from __future__ import annotations

from contree_tui.tui.screens.operation_verbs import wait_summary


def test_one_operation_is_named_as_one() -> None:
    assert wait_summary(["SUCCESS"]) == "the operation ended: succeeded"
    assert wait_summary(["FAILED"]) == "the operation ended: did not succeed"


def test_several_are_counted() -> None:
    assert wait_summary(["SUCCESS", "SUCCESS"]) == "all 2 operations ended: 2 succeeded"
    assert wait_summary(["SUCCESS", "FAILED", "CANCELLED"]) == "all 3 operations ended: 1 succeeded, 2 did not succeed"
